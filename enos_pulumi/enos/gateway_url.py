"""The API gateway's base URL: what is accepted (https, or plain http to a loopback host only; no
credentials, query or odd characters) and how a URL is quoted in an error (never what precedes an ``@``).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["is_loopback", "normalize_gateway", "redact_url"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """``url`` fit to quote in an error: anything up to an ``@`` (user info, a password, however mistyped
    the URL is) hidden, control characters escaped, and cut to a readable length."""
    shown = re.sub(r"^.*@", "<hidden>@", url, flags=re.DOTALL) if "@" in url else url
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    return repr(shown)


def normalize_gateway(url: str, source: str) -> str:
    """The gateway's base URL as requests are built on it (no trailing slash), or a
    :class:`ConfigurationError` naming ``source`` (where the value came from) and what to do."""
    example = "a base URL like https://apim-ppe1.envisioniot.com"
    if "@" in url:
        # Checked first, and without echoing what precedes the @: `https//ak:PW@host` or `ak:PW@host`
        # are mistyped URLs with a password in them, not a host name.
        raise ConfigurationError(
            f"{source} must be {example}, without credentials (user:password@), got {redact_url(url)}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{source} must be {example}, got {redact_url(url)}: {exc}") from exc
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{source} must be a plain base URL (no query or fragment): scheme://host[:port][/path]"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{source} must be {example}, got {redact_url(url)}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{source} uses plain http:// for {parts.hostname}: credentials and tokens would travel "
            f"unencrypted. Use https:// (plain http is accepted only for loopback, e.g. the local simulator)"
        )
    if port == 0:
        raise ConfigurationError(f"{source} has an invalid port: {redact_url(url)}")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in url):
        raise ConfigurationError(
            f"{source} must be {example} with no spaces or control characters, got {redact_url(url)}"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
