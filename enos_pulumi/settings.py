"""Connection settings: resolved by one pure function, held in a frozen dataclass that hides the secret.

Precedence per setting: an explicit value > the stack config mapping (``enos:*`` keys, as handed to the
provider's ``configure``) > the environment (``ENOS_*``). Nothing is read at import time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_PAIRS_PER_REQUEST",
    "DEFAULT_PARALLEL_REQUESTS",
    "SETTINGS_KEYS",
    "Settings",
    "resolve_org_id",
    "resolve_settings",
]

DEFAULT_PARALLEL_REQUESTS = 4
DEFAULT_MAX_PAIRS_PER_REQUEST = 100_000
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_RETRY_DEADLINE = 120.0

# field name -> (stack config key, environment variable)
SETTINGS_KEYS: dict[str, tuple[str, str]] = {
    "api_gateway": ("enos:apiGateway", "ENOS_API_GATEWAY"),
    "access_key": ("enos:accessKey", "ENOS_ACCESS_KEY"),
    "secret_key": ("enos:secretKey", "ENOS_SECRET_KEY"),
    "parallel_requests": ("enos:parallelRequests", "ENOS_PARALLEL_REQUESTS"),
    "max_pairs_per_request": ("enos:maxPairsPerRequest", "ENOS_MAX_PAIRS_PER_REQUEST"),
    "retry_deadline": ("enos:retryDeadlineSeconds", "ENOS_RETRY_DEADLINE_SECONDS"),
    "read_timeout": ("enos:readTimeoutSeconds", "ENOS_READ_TIMEOUT_SECONDS"),
}
ORG_ID_KEYS = ("enos:orgId", "ENOS_ORG_ID")


@dataclass(frozen=True)
class Settings:
    """Everything needed to call EnOS. ``repr``/``str`` never show the secret key."""

    api_gateway: str
    access_key: str
    secret_key: str = field(repr=False)
    parallel_requests: int = DEFAULT_PARALLEL_REQUESTS
    max_pairs_per_request: int = DEFAULT_MAX_PAIRS_PER_REQUEST
    retry_deadline: float = DEFAULT_RETRY_DEADLINE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    def __repr__(self) -> str:
        return (
            f"Settings(api_gateway={self.api_gateway!r}, access_key={self.access_key!r}, "
            f"secret_key=<hidden>, parallel_requests={self.parallel_requests}, "
            f"max_pairs_per_request={self.max_pairs_per_request}, retry_deadline={self.retry_deadline}, "
            f"connect_timeout={self.connect_timeout}, read_timeout={self.read_timeout})"
        )

    __str__ = __repr__

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
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")  # fails the range check below, which words the error
    if not (minimum <= value <= maximum) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise ConfigurationError(f"{source} must be {kind} from {minimum:g} to {maximum:g}, got {raw!r}")
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normalize_gateway(url: str, source: str) -> str:
    parts = urlsplit(url)
    # Checked first, and without echoing the URL: a password in it must not reach the error text.
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{source} must be a plain base URL (no credentials, query or fragment): "
            f"scheme://host[:port][/path]"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"{source} must be a base URL like https://apim-ppe1.envisioniot.com, got {url!r}"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{source} uses plain http:// for {parts.hostname}: credentials and tokens would travel "
            f"unencrypted. Use https:// (plain http is accepted only for loopback, e.g. the local simulator)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ConfigurationError(f"{source} has an invalid port: {url!r}") from exc
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build validated :class:`Settings` from explicit values > stack config > environment.

    Pure: the caller passes ``environ`` (normally ``os.environ``) so that the moment of reading is the
    caller's choice (the provider reads it at call time, so rotated credentials need no ``pulumi up``).
    """
    sources = (explicit or {}, config or {}, environ or {})
    gateway, gateway_source = _required("api_gateway", "API gateway", *sources)
    access_key, _ = _required("access_key", "access key", *sources)
    secret_key, _ = _required("secret_key", "secret key", *sources)
    return Settings(
        api_gateway=_normalize_gateway(gateway, gateway_source),
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
        retry_deadline=_number("retry_deadline", DEFAULT_RETRY_DEADLINE, 0, 3600, False, *sources),
        read_timeout=_number("read_timeout", DEFAULT_READ_TIMEOUT, 1, 600, False, *sources),
    )


def resolve_org_id(
    explicit: str | None, config: Mapping[str, Any] | None, environ: Mapping[str, str] | None
) -> str:
    """The organization: explicit > stack config ``enos:orgId`` > ``ENOS_ORG_ID``."""
    config_key, env_var = ORG_ID_KEYS
    if explicit is not None and not isinstance(explicit, str):
        raise ConfigurationError(f"org_id must be a string, got {type(explicit).__name__}")
    for value in (explicit, (config or {}).get(config_key), (environ or {}).get(env_var)):
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise ConfigurationError(
        f"org_id is not set: pass org_id=..., run `pulumi config set {config_key} <org id>` "
        f"or set the environment variable {env_var}"
    )
