"""A Standard Webhooks receiver: checks signatures and remembers every delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, read as the reference libraries read it:
    ``whsec_`` stripped, the rest base64-decoded (padding optional). ValueError when
    nothing is left."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    key = base64.b64decode(encoded + "==")
    if not key:
        raise ValueError("the webhook secret is empty once base64-decoded")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``, keyed by the secret's bytes."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float | None,
    now: float,
) -> tuple[int, str]:
    """(status, reason): 204 when valid, 400 for missing headers, 401 for a bad signature."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return 400, "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        sent_at = int(stamp)
    except ValueError:
        return 401, "webhook-timestamp is not an integer"
    if tolerance is not None and abs(now - sent_at) > tolerance:
        return 401, f"webhook-timestamp is more than {tolerance:g}s away from now"
    expected = sign(key, msg_id, stamp, body)
    # Several signatures may be sent while a secret is rotated; one match is enough.
    for candidate in signatures.split(" "):
        if candidate and hmac.compare_digest(candidate, expected):
            return 204, "ok"
    return 401, "no signature matches"


class WebhookLog:
    """Every delivery received, newest last, capped to the latest ``size``."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=size)
        self._accepted_ids: set[str] = set()
        self.received = 0
        self.valid = 0

    def record(self, headers: Mapping[str, str], body: bytes, valid: bool, status: int,
               reason: str) -> None:
        msg_id = headers.get("webhook-id", "")
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        with self._lock:
            self.received += 1
            self.valid += valid
            accepted = status == 204
            self._deliveries.append(
                {
                    "id": msg_id,
                    "timestamp": headers.get("webhook-timestamp", ""),
                    "valid": valid,
                    "status": status,
                    "reason": reason,
                    # A retry of an event already accepted: receivers dedupe on webhook-id.
                    "duplicate": accepted and msg_id in self._accepted_ids,
                    "body": parsed,
                    "raw": body.decode("utf-8", "replace") if parsed is None else None,
                    # Exactly as received, so a test can check the signature itself.
                    "payload": body.decode("utf-8", "replace"),
                    "signature": headers.get("webhook-signature", ""),
                    # Whether the sender added credentials of its own (never their value).
                    "authorization": "authorization" in {k.lower() for k in headers},
                    "received_at": time.time(),
                }
            )
            if accepted:
                self._accepted_ids.add(msg_id)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "received": self.received,
                "valid": self.valid,
                "invalid": self.received - self.valid,
                "unique_accepted": len(self._accepted_ids),
            }
