"""Connection settings: resolved by one pure function, held in a frozen dataclass that hides the secret.

Precedence per setting: an explicit value > the stack config mapping (``enos:*`` keys, as handed to the
provider's ``configure``) > the environment (``ENOS_*``). Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigurationError
from .quoting import HIDDEN, PLAIN
from .setting_rules import AUTH_SCHEMES, MAX_PAIRS_LIMIT, RULES, existing_ca_bundle
from .timeouts import Timeouts

__all__ = [
    "AUTH_SCHEMES",
    "DEFAULT_MAX_PAIRS_PER_REQUEST",
    "DEFAULT_PARALLEL_REQUESTS",
    "SETTINGS_KEYS",
    "Settings",
    "resolve_org_id",
    "resolve_settings",
    "setting_problems",
]

DEFAULT_PARALLEL_REQUESTS = 4
DEFAULT_MAX_PAIRS_PER_REQUEST = MAX_PAIRS_LIMIT
_TIMEOUTS = Timeouts()
#: What is read of any answer: a Get Stage State of 100,000 pairs with state is ~10 MB, every other EnOS
#: answer is tiny; an endless error page must not grow the process.
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024

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
#: The settings a reset cannot do without: field name -> what the error calls it.
_REQUIRED = {"api_gateway": "API gateway", "access_key": "access key", "secret_key": "secret key"}


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


def _missing(name: str, what: str) -> ConfigurationError:
    config_key, env_var = SETTINGS_KEYS[name]
    extra = " --secret" if name == "secret_key" else ""
    return ConfigurationError(
        f"EnOS {what} is not set: run `pulumi config set{extra} {config_key} <value>` "
        f"or set the environment variable {env_var}"
    )


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build validated :class:`Settings` from explicit values > stack config > environment.

    ``environ`` defaults to ``os.environ``; the provider passes it at call time, so rotated credentials
    need no ``pulumi up``. ``explicit`` takes :class:`Settings` field names; any other key is an error.
    Each setting is checked by its rule in :mod:`.setting_rules`.
    """
    unknown = sorted(set(explicit or {}) - set(SETTINGS_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(map(repr, unknown))}: explicit settings take the field names "
            f"{', '.join(SETTINGS_KEYS)} (stack config keys such as enos:apiGateway go in config)"
        )
    sources = (explicit or {}, config or {}, os.environ if environ is None else environ)
    found = {name: _pick(name, *sources) for name in SETTINGS_KEYS}
    for name, what in _REQUIRED.items():
        if found[name] is None:
            raise _missing(name, what)
    values = {name: RULES[name](*given, PLAIN) for name, given in found.items() if given is not None}
    if found["ca_bundle"] is not None:
        values["ca_bundle"] = existing_ca_bundle(values["ca_bundle"], found["ca_bundle"][1])
    return Settings(**values)


def setting_problems(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None, secret_keys: Collection[str] = ()
) -> list[tuple[str, str]]:
    """``(stack config key, problem)`` for each setting ``resolve_settings`` would refuse as given (in
    ``config``, else ``environ``), by the same rules; what a preview can tell. Unlike at ``pulumi up``, a
    missing setting is no problem (a pull-request job has no credentials) and whether ``enos:caBundle``
    names a file is not looked at (it is a path on the machine that runs the update). The values of the
    keys in ``secret_keys`` are never quoted."""
    sources: tuple[Mapping[str, Any], ...] = ({}, config, os.environ if environ is None else environ)
    problems = []
    for name, (config_key, _) in SETTINGS_KEYS.items():
        found = _pick(name, *sources)
        if found is None:
            continue
        try:
            RULES[name](*found, HIDDEN if config_key in secret_keys else PLAIN)
        except ConfigurationError as exc:
            problems.append((config_key, str(exc)))
    return problems


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
