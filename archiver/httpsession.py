"""The one way archiver opens an HTTP session (API client and webhook sink).

requests' default session reads the environment on every request, and with it
``~/.netrc``: an entry there for the API or webhook host silently replaces the
``Authorization`` header archiver set (a Bearer token becomes the netrc login's
Basic credentials, and the calls fail as if archiver's credentials were wrong).
This session never reads netrc. It still honours what a deployment sets on
purpose, read once per host instead of per request: ``HTTPS_PROXY``/``HTTP_PROXY``/
``ALL_PROXY`` with ``NO_PROXY``, and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.
A loopback host (the simulator, tests) is never reached through a proxy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import get_environ_proxies

from archiver.netutil import is_loopback_host


def _ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class Session(requests.Session):
    """A requests session that takes proxies and a CA bundle from the environment, not netrc."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no netrc, no per-request environment look-ups
        self._ca = _ca_bundle()
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def environment_proxies(self, url: str) -> dict[str, str]:
        """The environment's proxies for ``url``'s scheme and host, read once per host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        with self._lock:
            found = self._proxies.get(key)
            if found is None:
                host = parts.hostname or ""
                found = {} if is_loopback_host(host) else dict(get_environ_proxies(url, no_proxy=None))
                self._proxies[key] = found
            return found

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Mapping[str, str] | None, stream: Any,
        verify: Any, cert: Any,
    ) -> Any:
        merged = dict(proxies or {})
        if isinstance(url, str):
            for scheme, proxy in self.environment_proxies(url).items():
                merged.setdefault(scheme, proxy)
        if (verify is True or verify is None) and self._ca is not None:
            verify = self._ca
        return super().merge_environment_settings(url, merged, stream, verify, cert)
