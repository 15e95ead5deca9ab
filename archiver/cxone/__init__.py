"""Client of the CXone archive API (the wire format itself lives in :mod:`archiver.cxone.wire`)."""

from __future__ import annotations

from archiver.cxone.client import CxoneClient, RequestEvent
from archiver.cxone.ratelimit import RateLimiter

__all__ = ["CxoneClient", "RateLimiter", "RequestEvent"]
