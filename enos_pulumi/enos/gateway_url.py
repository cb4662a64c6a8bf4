"""The API gateway's base URL: what is accepted (https, or plain http to a loopback host only; no
credentials, query or odd characters), its one spelling (so that a pipeline's pause is coordinated by
gateway whatever case or default port a program wrote), and how a URL is quoted in an error (never what
precedes an ``@``).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .quoting import PLAIN, Show

__all__ = ["is_loopback", "normalize_gateway", "redact_url"]

_DEFAULT_PORTS = {"https": 443, "http": 80}


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


def normalize_gateway(url: str, source: str, show: Show = PLAIN) -> str:
    """The gateway's base URL in its one spelling (scheme and host in lower case, no default port, no
    trailing slash; the path kept as given), or a :class:`ConfigurationError` naming ``source`` (where
    the value came from) and what to do. The URL is quoted through ``show``."""
    example = "a base URL like https://apim-ppe1.envisioniot.com"
    if "@" in url:
        # Checked first, and without echoing what precedes the @: `https//ak:PW@host` or `ak:PW@host`
        # are mistyped URLs with a password in them, not a host name.
        raise ConfigurationError(
            f"{source} must be {example}, without credentials (user:password@), got "
            f"{show.text(redact_url(url))}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        shown = show.text(f"{redact_url(url)}: {exc}")
        raise ConfigurationError(f"{source} must be {example}, got {shown}") from exc
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{source} must be a plain base URL (no query or fragment): scheme://host[:port][/path]"
        )
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigurationError(f"{source} must be {example}, got {show.text(redact_url(url))}")
    if scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            f"{source} uses plain http:// for {show.text(host)}: credentials and tokens would travel "
            f"unencrypted. Use https:// (plain http is accepted only for loopback, e.g. the local simulator)"
        )
    if port == 0:
        raise ConfigurationError(f"{source} has an invalid port: {show.text(redact_url(url))}")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in url):
        raise ConfigurationError(
            f"{source} must be {example} with no spaces or control characters, got "
            f"{show.text(redact_url(url))}"
        )
    netloc = f"[{host}]" if ":" in host else host  # urlsplit gives an IPv6 host in lower case, unbracketed
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"
