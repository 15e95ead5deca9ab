"""URL rules shared by the API client and the webhook sink."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from archiver.errors import ConfigError


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, what: str, *, otherwise: str = "") -> str | None:
    """Why ``url`` is refused as an endpoint, if it is: https, or plain http on loopback
    only. The URL itself is never quoted: it may hold credentials. ``otherwise`` names
    what else the caller accepts (e.g. " or `embedded`")."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"{what} is not a valid URL (it holds a space or a control character)"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return f"{what} is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return f"{what} must be an https:// URL{otherwise}"
    if not parts.netloc.isascii():
        # A letter from another script (a Cyrillic а), a fullwidth dot: the name looks
        # like the one a reviewer expects and is another host once encoded for DNS.
        return (f"{what} must name its host in ASCII (an internationalized name in its "
                "xn-- form): a host with other characters can look like another")
    if parts.username or parts.password:
        return f"{what} must not carry credentials"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{what} must use https:// (plain http:// only for loopback addresses)"
    return None


def require_secure_url(url: str, *, what: str) -> str:
    """``url`` itself, or ConfigError saying why it is refused (see ``url_problem``)."""
    problem = url_problem(url, what)
    if problem:
        raise ConfigError(problem)
    return url
