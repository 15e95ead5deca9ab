"""What a run talks to: the API (its backend), the host actually used, and the tenant.

Every run records its target: in the state store (``runs.target``), the run report,
the audit and webhook events and the metrics' labels. A run against the built-in
simulator says ``embedded`` everywhere, so it never passes for production. A state
folder belongs to the first target it was used for (``store_meta``): a run against
another is refused before its first request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from archiver.netutil import is_loopback_host

# The tutorial's campaign archive contract, the only backend so far.
CAMPAIGN_ARCHIVE = "campaign-archive"
# The host of a run against the built-in simulator (connection.base_url: embedded).
EMBEDDED = "embedded"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    backend: str
    host: str  # host[:port] of the base URL used, or ``embedded``
    tenant: str | None = None

    @property
    def embedded(self) -> bool:
        return self.host == EMBEDDED

    @property
    def production(self) -> bool:
        """A tenant that may be real: neither the built-in simulator nor a loopback host
        (a test server; plain http is refused for any other host)."""
        if self.embedded:
            return False
        host = self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host
        return not is_loopback_host(host.strip("[]"))

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, as reports, events and the state store carry it."""
        return {"backend": self.backend, "host": self.host, "tenant": self.tenant}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Target | None:
        """The target a store recorded; None for a run that recorded none (or garbage)."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        backend, host, tenant = data.get("backend"), data.get("host"), data.get("tenant")
        if not isinstance(backend, str) or not isinstance(host, str):
            return None
        return cls(backend, host, tenant if isinstance(tenant, str) else None)

    def __str__(self) -> str:
        where = "embedded (the built-in simulator)" if self.embedded else self.host
        tenant = f", tenant {self.tenant}" if self.tenant else ""
        return f"{self.backend} at {where}{tenant}"


def target_for(base_url: str, *, backend: str = CAMPAIGN_ARCHIVE, tenant: str | None = None) -> Target:
    """The target of a run whose API base URL (after every override) is ``base_url``."""
    if base_url == EMBEDDED:
        return Target(backend, EMBEDDED, tenant)
    return Target(backend, url_host(base_url), tenant)


def url_host(url: str) -> str:
    """``host[:port]`` of ``url``, lower case, without credentials or a default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host or url
