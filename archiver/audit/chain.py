"""How audit lines are chained: each line carries the hash of the one before it.

A line is a JSON object holding the record plus ``event_id``, ``seq`` (1, 2, 3, ...),
``prev_hash`` (the previous line's ``hash``; 64 zeros for the first line) and ``hash``, the
SHA-256 of the line's canonical JSON without ``hash``. Editing a line breaks its own hash;
deleting, inserting or reordering lines breaks ``seq`` and ``prev_hash`` of the line after.

The canonical JSON (:func:`canonical`; README.md, "Checking a log without archiver", says
the same for auditors) is ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` in UTF-8, of the line as ``json.loads`` reads it:

- no whitespace outside strings; keys sorted by code point (not by UTF-16 code unit);
- strings in UTF-8, escaping only ``"``, ``\\`` and U+0000..U+001F (``\\b \\t \\n \\f \\r``,
  else ``\\u00xx`` in lowercase hex);
- a number written without fraction or exponent as its exact integer digits (``-0`` as
  ``0``); any other as ``repr`` of the nearest double: shortest round-trip digits,
  positional with at least one decimal when the exponent is -4..15 (``12.0``, ``-0.0``),
  else ``1e-07``, ``1.5e+300`` (sign and at least two exponent digits).

That is not RFC 8785 (JCS): the two differ on ``12.0``, ``1e-07``, ``1e+20``, ``-0.0``,
most integers beyond ±(2**53 - 1), and keys with a character above U+FFFF. Lines already
written are hashed this way for good; new records may not hold an integer no double holds
exactly (:func:`number_problem`), which readers that hold numbers as doubles read as
another value.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver import jsonsafe

GENESIS_HASH = "0" * 64
# The environment variable naming the Ed25519 key a run signs its audit logs' digests
# with (archiver.audit.digest); here, so a run that signs nothing need not import it.
SIGNING_KEY_ENV = "ARCHIVER_SIGNING_KEY"
# The folder beside an audit log its signed digests go in (archiver.audit.digest).
DIGEST_FOLDER_SUFFIX = ".digests"


def digest_folder(log_path: Path) -> Path:
    """Where the signed digests of the audit log at ``log_path`` go: here, so a check of
    the path (the audit_log sink's) need not load the signing code."""
    return log_path.with_name(log_path.name + DIGEST_FOLDER_SUFFIX)
CHAIN_KEYS = frozenset({"event_id", "seq", "prev_hash", "hash"})


def record_problem(record: object) -> str | None:
    """Why ``record`` cannot be an audit line's record, if it cannot: the one statement of
    the rule, for the audit log, its sink and the template check alike."""
    if not isinstance(record, Mapping):
        return f"an audit record must be a JSON object, not {type(record).__name__}"
    reserved = sorted(CHAIN_KEYS & record.keys())
    if reserved:
        return (f"an audit record must not set {', '.join(f'`{k}`' for k in reserved)}: the "
                "audit log adds them itself to chain its lines; remove them from the audit "
                "template")
    return None


_EXCERPT = 40


def number_problem(record: object) -> str | None:
    """Why a rendered audit record cannot be chained for a number it holds, if it cannot:
    an integer no double holds exactly (beyond ±2**53 some are not: 9007199254740993).
    Its line's hash covers its exact digits, but a reader that holds JSON numbers as
    doubles (JavaScript's ``JSON.parse``, jq, most JSON libraries) reads another value
    (9007199254740992), so an auditor would be shown a value the hash does not cover, as
    with a key given twice.

    Checked where a record is made (the audit log sink's render, the template check of
    ``validate`` and ``run``), not by the log itself: a line rendered by an earlier version
    and still pending in a state store is written as it was rendered, and logs that hold
    such integers verify as they always did."""
    stack: list[tuple[object, str]] = [(record, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            stack.extend((value, f"{where}.{key}" if where else str(key))
                         for key, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{n}]") for n, value in reversed(list(enumerate(node))))
        elif isinstance(node, int) and not isinstance(node, bool):
            try:
                seen = float(node)
            except OverflowError:
                read = "infinity"
            else:
                if seen == node:
                    continue
                read = str(int(seen))
            return (f"the audit record holds the integer {_excerpt(str(node))} at "
                    f"`{_excerpt(where or '(the record)')}`, which no double holds exactly: "
                    f"readers that hold JSON numbers as doubles (JavaScript, jq, most JSON "
                    f"libraries) read it as {_excerpt(read)}, a value the line's hash does not "
                    "cover; render it as a string (`| string | tojson`)")
    return None


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


@dataclass(frozen=True, slots=True)
class AuditLine:
    """Where the chain stands after one line."""

    seq: int
    hash: str
    event_id: str


def canonical(obj: Mapping[str, Any]) -> bytes:
    """The one byte form a line is hashed in (and a digest signed in), independent of key
    order and spacing on disk: the form the module's docstring and README.md spell out.
    Changing it would break every log already written."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def line_hash(line: Mapping[str, Any]) -> str:
    """SHA-256 hex of ``line`` without its ``hash`` key."""
    body = {k: v for k, v in line.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def check_line(raw: bytes) -> tuple[AuditLine, str] | str:
    """The chain position and ``prev_hash`` a stored line claims, or why it cannot be trusted.

    Only the line itself is checked here (its JSON, its fields and its own hash); whether it
    follows the line before it is the reader's business.
    """
    if raw.startswith(codecs.BOM_UTF8):
        # json.loads of bytes skips it (and reads UTF-16 too); jq, JavaScript and Python's
        # json.loads of text refuse the line. Lines are written in UTF-8, without one.
        return "a byte order mark before the JSON (other readers refuse it): the line was edited"
    try:
        line = jsonsafe.loads(raw.decode("utf-8"), unique_keys=True)
    except jsonsafe.DuplicateKey as err:
        # The hash covers the value parsed last; a reader keeping the first sees another.
        return f"{err} in one object: the line was edited"
    except ValueError as err:  # not UTF-8; nested past the parser's depth
        return f"not valid JSON ({err}): the line was edited or damaged"
    if not isinstance(line, dict):
        return "not a JSON object: the line was edited or damaged"
    seq, digest, prev_hash, event_id = (
        line.get(k) for k in ("seq", "hash", "prev_hash", "event_id")
    )
    if type(seq) is not int or seq < 1:
        return "missing or invalid seq (expected a positive integer): the line was edited"
    for key, value in (("hash", digest), ("prev_hash", prev_hash), ("event_id", event_id)):
        if not isinstance(value, str):
            return f"missing or invalid {key}: the line was edited"
    try:
        intact = line_hash(line) == digest
    except ValueError:  # NaN or Infinity, which append never writes
        intact = False
    if not intact:
        return "hash mismatch: the line was edited after it was written"
    return AuditLine(seq=seq, hash=str(digest), event_id=str(event_id)), str(prev_hash)
