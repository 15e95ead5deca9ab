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


def require_secure_url(url: str, *, what: str) -> str:
    """Plain http is accepted only for loopback addresses; anything else must be https."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return url
    raise ConfigError(f"{what} {url!r} must use https:// (plain http only for loopback addresses)")
