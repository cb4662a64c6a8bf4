"""Connection settings: resolved by one pure function, held in a frozen dataclass that hides the secret.

Precedence per setting: an explicit value > the stack config mapping (``enos:*`` keys, as handed to the
provider's ``configure``) > the environment (``ENOS_*``). Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigurationError
from .gateway_url import normalize_gateway
from .timeouts import Timeouts

__all__ = [
    "AUTH_SCHEMES",
    "DEFAULT_MAX_PAIRS_PER_REQUEST",
    "DEFAULT_PARALLEL_REQUESTS",
    "SETTINGS_KEYS",
    "Settings",
    "resolve_org_id",
    "resolve_settings",
]

DEFAULT_PARALLEL_REQUESTS = 4
DEFAULT_MAX_PAIRS_PER_REQUEST = 100_000
_TIMEOUTS = Timeouts()
#: What is read of any answer: a Get Stage State of 100,000 pairs with state is ~10 MB, every other EnOS
#: answer is tiny; an endless error page must not grow the process.
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: ``apim-signature``: the three APIM headers (enos-api.md); ``bearer``: ``Authorization: Bearer <token>``.
AUTH_SCHEMES = ("apim-signature", "bearer")

# field name -> (stack config key, environment variable)
SETTINGS_KEYS: dict[str, tuple[str, str]] = {
    "api_gateway": ("enos:apiGateway", "ENOS_API_GATEWAY"),
    "access_key": ("enos:accessKey", "ENOS_ACCESS_KEY"),
    "secret_key": ("enos:secretKey", "ENOS_SECRET_KEY"),
    "parallel_requests": ("enos:parallelRequests", "ENOS_PARALLEL_REQUESTS"),
    "max_pairs_per_request": ("enos:maxPairsPerRequest", "ENOS_MAX_PAIRS_PER_REQUEST"),
    "retry_deadline": ("enos:retryDeadlineSeconds", "ENOS_RETRY_DEADLINE_SECONDS"),
    "read_timeout": ("enos:readTimeoutSeconds", "ENOS_READ_TIMEOUT_SECONDS"),
    "connect_timeout": ("enos:connectTimeoutSeconds", "ENOS_CONNECT_TIMEOUT_SECONDS"),
    "attempt_timeout": ("enos:attemptTimeoutSeconds", "ENOS_ATTEMPT_TIMEOUT_SECONDS"),
    "reset_timeout": ("enos:resetTimeoutSeconds", "ENOS_RESET_TIMEOUT_SECONDS"),
    "operation_timeout": ("enos:operationTimeoutSeconds", "ENOS_OPERATION_TIMEOUT_SECONDS"),
    "auth_scheme": ("enos:authScheme", "ENOS_AUTH_SCHEME"),
    "ca_bundle": ("enos:caBundle", "ENOS_CA_BUNDLE"),
}
ORG_ID_KEYS = ("enos:orgId", "ENOS_ORG_ID")


@dataclass(frozen=True)
class Settings:
    """Everything needed to call EnOS. ``repr``/``str`` never show the secret key.

    The six time bounds are fields of their own (each is a setting, and ``resolve_settings`` takes
    them by these names); the client reads them as one value, :attr:`timeouts`, which says how they nest.
    """

    api_gateway: str
    access_key: str
    secret_key: str = field(repr=False)
    parallel_requests: int = DEFAULT_PARALLEL_REQUESTS
    max_pairs_per_request: int = DEFAULT_MAX_PAIRS_PER_REQUEST
    retry_deadline: float = _TIMEOUTS.retry_deadline
    connect_timeout: float = _TIMEOUTS.connect
    read_timeout: float = _TIMEOUTS.read
    attempt_timeout: float = _TIMEOUTS.attempt
    reset_timeout: float = _TIMEOUTS.reset
    operation_timeout: float = _TIMEOUTS.operation
    auth_scheme: str = "apim-signature"
    ca_bundle: str | None = None
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES

    def __repr__(self) -> str:
        # Every field, those marked repr=False (the secret key) as <hidden>.
        shown = (f"{f.name}={repr(getattr(self, f.name)) if f.repr else '<hidden>'}" for f in fields(self))
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # A pickle would carry the secret key in clear (into a dynamic provider's stored state, say).
        raise TypeError("Settings hold the secret key and are never pickled: resolve them again where needed")

    @property
    def timeouts(self) -> Timeouts:
        """The six time bounds as one value."""
        return Timeouts(
            connect=self.connect_timeout,
            read=self.read_timeout,
            attempt=self.attempt_timeout,
            retry_deadline=self.retry_deadline,
            reset=self.reset_timeout,
            operation=self.operation_timeout,
        )

    @property
    def cache_key(self) -> tuple[str, str]:
        """Tokens are shared per (gateway, access key)."""
        return (self.api_gateway, self.access_key)


def _pick(
    name: str, explicit: Mapping[str, Any], config: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[Any, str] | None:
    """The first non-empty value for ``name`` and a label saying where it came from."""
    config_key, env_var = SETTINGS_KEYS[name]
    for value, source in (
        (explicit.get(name), f"argument {name}"),
        (config.get(config_key), f"stack config {config_key}"),
        (environ.get(env_var), f"environment variable {env_var}"),
    ):
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value, source
    return None


def _required(name: str, what: str, *sources: Mapping[str, Any]) -> tuple[str, str]:
    found = _pick(name, *sources)
    config_key, env_var = SETTINGS_KEYS[name]
    if found is None:
        extra = " --secret" if name == "secret_key" else ""
        raise ConfigurationError(
            f"EnOS {what} is not set: run `pulumi config set{extra} {config_key} <value>` "
            f"or set the environment variable {env_var}"
        )
    value, source = found
    if not isinstance(value, str):
        raise ConfigurationError(f"EnOS {what} from {source} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes the environment could not decode (a secret pasted from another encoding): never shown.
        raise ConfigurationError(
            f"EnOS {what} from {source} holds bytes that are not valid UTF-8 (not shown): set it again"
        ) from None
    return value.strip(), source


def _number(
    name: str,
    default: float,
    minimum: float,
    maximum: float,
    integer: bool,
    *sources: Mapping[str, Any],
) -> float:
    found = _pick(name, *sources)
    if found is None:
        return default
    raw, source = found
    try:
        value = float(raw) if not isinstance(raw, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        value = float("nan")  # fails the range check below, which words the error
    if not (minimum <= value <= maximum) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:60] + "..."
        raise ConfigurationError(f"{source} must be {kind} from {minimum:g} to {maximum:g}, got {shown}")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...], *sources: Mapping[str, Any]) -> str:
    found = _pick(name, *sources)
    if found is None:
        return default
    raw, source = found
    value = raw.strip().lower() if isinstance(raw, str) else raw
    if value not in choices:
        shown = repr(raw)[:60]
        raise ConfigurationError(f"{source} must be one of {', '.join(choices)}, got {shown}")
    return str(value)


def _ca_bundle(*sources: Mapping[str, Any]) -> str | None:
    found = _pick("ca_bundle", *sources)
    if found is None:
        return None
    raw, source = found
    if not isinstance(raw, str):
        raise ConfigurationError(f"{source} must be the path of a PEM file of CA certificates")
    path = os.path.expanduser(raw.strip())
    if not os.path.exists(path):
        raise ConfigurationError(
            f"{source} names {path!r}, which does not exist: give the path of a PEM file (or a directory "
            f"prepared with c_rehash) holding the CA certificates that issued the gateway's certificate"
        )
    return path


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build validated :class:`Settings` from explicit values > stack config > environment.

    ``environ`` defaults to ``os.environ``; the provider passes it at call time, so rotated credentials
    need no ``pulumi up``. ``explicit`` takes :class:`Settings` field names; any other key is an error.
    """
    unknown = sorted(set(explicit or {}) - set(SETTINGS_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(map(repr, unknown))}: explicit settings take the field names "
            f"{', '.join(SETTINGS_KEYS)} (stack config keys such as enos:apiGateway go in config)"
        )
    sources = (explicit or {}, config or {}, os.environ if environ is None else environ)
    gateway, gateway_source = _required("api_gateway", "API gateway", *sources)
    access_key, _ = _required("access_key", "access key", *sources)
    secret_key, _ = _required("secret_key", "secret key", *sources)
    return Settings(
        api_gateway=normalize_gateway(gateway, gateway_source),
        access_key=access_key,
        secret_key=secret_key,
        parallel_requests=int(_number("parallel_requests", DEFAULT_PARALLEL_REQUESTS, 1, 32, True, *sources)),
        max_pairs_per_request=int(
            _number(
                "max_pairs_per_request",
                DEFAULT_MAX_PAIRS_PER_REQUEST,
                1,
                DEFAULT_MAX_PAIRS_PER_REQUEST,  # the EnOS limit: only lowering it makes sense
                True,
                *sources,
            )
        ),
        retry_deadline=_number("retry_deadline", _TIMEOUTS.retry_deadline, 0, 3600, False, *sources),
        read_timeout=_number("read_timeout", _TIMEOUTS.read, 0.1, 600, False, *sources),
        connect_timeout=_number("connect_timeout", _TIMEOUTS.connect, 0.1, 600, False, *sources),
        attempt_timeout=_number("attempt_timeout", _TIMEOUTS.attempt, 0.1, 3600, False, *sources),
        reset_timeout=_number("reset_timeout", _TIMEOUTS.reset, 1, 86400, False, *sources),
        operation_timeout=_number("operation_timeout", _TIMEOUTS.operation, 1, 86400, False, *sources),
        auth_scheme=_choice("auth_scheme", "apim-signature", AUTH_SCHEMES, *sources),
        ca_bundle=_ca_bundle(*sources),
    )


def resolve_org_id(
    explicit: str | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The organization: explicit > stack config ``enos:orgId`` > ``ENOS_ORG_ID``."""
    config_key, env_var = ORG_ID_KEYS
    if explicit is not None and not isinstance(explicit, str):
        raise ConfigurationError(f"org_id must be a string, got {type(explicit).__name__}")
    env = os.environ if environ is None else environ
    for value in (explicit, (config or {}).get(config_key), env.get(env_var)):
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise ConfigurationError(
        f"org_id is not set: pass org_id=..., run `pulumi config set {config_key} <org id>` "
        f"or set the environment variable {env_var}"
    )
