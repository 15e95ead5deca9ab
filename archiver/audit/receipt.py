"""An audit log's receipt: what the ``audit_log`` sink returns for a delivered event and
the state store keeps with it (the outbox's ``receipt`` column), as JSON text
``{"path": ..., "seq": ..., "hash": ...}``: the file written and its last line's seq and
hash. The store reads receipts back to know where each log must end
(``archiver audit verify --state``, the repair of a torn last line)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from archiver import jsonsafe
from archiver.audit.chain import AuditLine

# The seq and hash of the last line of a log the state store saw written
# (``Events.audit_checkpoint``).
LastLine = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Receipt:
    path: str  # the log's resolved path
    seq: int
    hash: str

    @classmethod
    def of(cls, path: str, line: AuditLine) -> Receipt:
        return cls(path, line.seq, line.hash)

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "seq": self.seq, "hash": self.hash})


def _fields(text: str) -> dict[str, Any]:
    """A receipt's JSON object; empty for one that is not (a plugin sink's receipt can
    be any text)."""
    try:
        data = jsonsafe.loads(text)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def path_of(text: str) -> str | None:
    """The file a sink's receipt names, when it names one (other sinks' receipts may not)."""
    path = _fields(text).get("path")
    return path if isinstance(path, str) else None


def parse(text: str) -> Receipt | None:
    """An audit log's receipt, or None for another sink's. ValueError for one that names
    a file but not a line of it (a seq that is not a number, a hash that is not text)."""
    data = _fields(text)
    path = data.get("path")
    if not isinstance(path, str) or "seq" not in data or "hash" not in data:
        return None
    seq, digest = data["seq"], data["hash"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
        raise ValueError(f"the receipt for {path} names no line of it: seq {seq!r}, hash {digest!r}")
    return Receipt(path, seq, digest)


def checkpoint(receipts: Iterable[str], path: str) -> Receipt | None:
    """The receipt for ``path`` first among ``receipts`` (give them newest first)."""
    for text in receipts:
        if path_of(text) == path:
            return parse(text)
    return None
