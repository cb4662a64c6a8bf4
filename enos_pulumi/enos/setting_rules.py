"""One rule per connection setting: which values it takes, and the error for any other, naming where the
value came from and what it must be.

:func:`~enos_pulumi.enos.settings.resolve_settings` applies the rules at ``pulumi up``;
:func:`~enos_pulumi.enos.settings.setting_problems` applies the same rules at preview, where a setting
may be missing (a pull-request job has no credentials) and the CA bundle, a path on the machine that runs
the update, is not looked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError
from .gateway_url import normalize_gateway
from .quoting import Show

__all__ = ["AUTH_SCHEMES", "MAX_PAIRS_LIMIT", "RULES", "Rule", "existing_ca_bundle"]

#: ``(raw value, where it came from, how to quote it)`` -> the value to use, or ConfigurationError.
Rule = Callable[[Any, str, Show], Any]

#: ``apim-signature``: the three APIM headers (enos-api.md); ``bearer``: ``Authorization: Bearer <token>``.
AUTH_SCHEMES = ("apim-signature", "bearer")
#: The EnOS limit of assets x points per request: only lowering it makes sense.
MAX_PAIRS_LIMIT = 100_000


def _text(what: str) -> Rule:
    def check(raw: Any, source: str, show: Show) -> str:
        if not isinstance(raw, str):
            raise ConfigurationError(f"EnOS {what} from {source} must be a string")
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            # Bytes the environment could not decode (a secret pasted from another encoding): never shown.
            raise ConfigurationError(
                f"EnOS {what} from {source} holds bytes that are not valid UTF-8 (not shown): set it again"
            ) from None
        return raw.strip()

    return check


def _gateway(raw: Any, source: str, show: Show) -> str:
    return normalize_gateway(_text("API gateway")(raw, source, show), source, show)


def _number(minimum: float, maximum: float, integer: bool = False) -> Rule:
    def check(raw: Any, source: str, show: Show) -> float:
        try:
            value = float(raw) if not isinstance(raw, bool) else float("nan")
        except (TypeError, ValueError, OverflowError):
            value = float("nan")  # fails the range check below, which words the error
        if not (minimum <= value <= maximum) or (integer and value != int(value)):
            kind = "a whole number" if integer else "a number"
            # Pulumi hands an explicit provider's numbers over as floats: a 0 in the program is 0.0 here.
            whole = isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53
            shown = repr(int(raw)) if whole else repr(raw)
            shown = shown if len(shown) <= 60 else shown[:60] + "..."
            raise ConfigurationError(
                f"{source} must be {kind} from {minimum:g} to {maximum:g}, got {show.text(shown)}"
            )
        return int(value) if integer else value

    return check


def _choice(choices: tuple[str, ...]) -> Rule:
    def check(raw: Any, source: str, show: Show) -> str:
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in choices:
            shown = show.text(repr(raw)[:60])
            raise ConfigurationError(f"{source} must be one of {', '.join(choices)}, got {shown}")
        return str(value)

    return check


def _ca_bundle(raw: Any, source: str, show: Show) -> str:
    """The path as given (``~`` expanded); whether it exists is for the machine that runs the update."""
    if not isinstance(raw, str):
        raise ConfigurationError(f"{source} must be the path of a PEM file of CA certificates")
    return os.path.expanduser(raw.strip())


def existing_ca_bundle(path: str, source: str) -> str:
    """``path`` if it exists here, else the error saying what it must be."""
    if not os.path.exists(path):
        raise ConfigurationError(
            f"{source} names {path!r}, which does not exist: give the path of a PEM file (or a directory "
            f"prepared with c_rehash) holding the CA certificates that issued the gateway's certificate"
        )
    return path


#: By :class:`~enos_pulumi.enos.settings.Settings` field name (every key of ``SETTINGS_KEYS``).
RULES: dict[str, Rule] = {
    "api_gateway": _gateway,
    "access_key": _text("access key"),
    "secret_key": _text("secret key"),
    "parallel_requests": _number(1, 32, integer=True),
    "max_pairs_per_request": _number(1, MAX_PAIRS_LIMIT, integer=True),
    "retry_deadline": _number(0, 3600),
    "read_timeout": _number(0.1, 600),
    "connect_timeout": _number(0.1, 600),
    "attempt_timeout": _number(0.1, 3600),
    "reset_timeout": _number(1, 86400),
    "operation_timeout": _number(1, 86400),
    "auth_scheme": _choice(AUTH_SCHEMES),
    "ca_bundle": _ca_bundle,
}
