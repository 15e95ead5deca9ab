"""Signed digests of the audit log, in the manner of CloudTrail's digest files.

A hash chain shows that lines were edited, inserted or reordered, but not that the
tail was cut off, nor that the whole chain was rewritten consistently by someone who
can write the file. After every run a digest is written beside the log, in
``<log>.digests/``: the run id, the range of sequence numbers it covers (from the
line after the previous digest's range to the log's last line), the hash of that last
line, and the previous digest's signature, all signed with Ed25519 by the key the
``ARCHIVER_SIGNING_KEY`` PEM file holds (as ``openssl genpkey -algorithm ed25519``
writes it). The signature (base64) covers the canonical JSON of every other field
(:func:`archiver.audit.chain.canonical`, as a line's hash does); ``key_id`` is the
SHA-256 of the raw 32-byte public key. Holding only the public key, a verifier then
catches:

- a cut tail: a digest names a line the log no longer has;
- a consistent re-chain: the line a digest names has another hash now;
- a deleted digest: the next digest names a previous signature no digest has, or
  the log has lines after the last digest's range;
- a replaced or edited digest: its signature does not verify;
- another log's digests (signed with the same key) beside a copy of that log: each
  digest names the log it signs.

The private key never enters the state folder, the policy repository or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from archiver import jsonsafe
from archiver.audit.chain import (
    GENESIS_HASH,
    SIGNING_KEY_ENV,
    AuditLine,
    canonical,
    digest_folder,
)
from archiver.errors import AuditError, ConfigError
from archiver.regular_file import read_regular

FORMAT = "archiver-audit-digest/1"
_FIELDS = ("format", "log", "number", "run_id", "created_at", "first_seq", "last_seq",
           "last_hash", "previous_signature", "key_id")
_MAX_KEY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Digest:
    """One signed digest; ``body`` is every field but the signature."""

    body: Mapping[str, Any]
    signature: str
    file: str  # the digest's file name, for messages

    @property
    def number(self) -> int:
        return int(self.body["number"])

    @property
    def first_seq(self) -> int:
        return int(self.body["first_seq"])

    @property
    def last_seq(self) -> int:
        return int(self.body["last_seq"])

    @property
    def last_hash(self) -> str:
        return str(self.body["last_hash"])

    @property
    def run_id(self) -> str:
        return str(self.body["run_id"])

    @property
    def previous_signature(self) -> str | None:
        value = self.body["previous_signature"]
        return None if value is None else str(value)

    def as_json(self) -> dict[str, Any]:
        return {**self.body, "signature": self.signature}


def key_id(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key: names the key a digest was signed with."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        data = read_regular(path, _MAX_KEY_BYTES)
    except OSError as err:
        raise ConfigError(f"cannot read the {what} {path}: {err.strerror}") from err
    if len(data) > _MAX_KEY_BYTES:
        raise ConfigError(f"the {what} {path} is not a PEM key file (too large)")
    return data


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file at ``path`` (no passphrase)."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"the signing key {path} ({SIGNING_KEY_ENV}) is not an unencrypted PEM private key; "
            "make one with `openssl genpkey -algorithm ed25519 -out KEY.pem`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the signing key {path} ({SIGNING_KEY_ENV}) is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at ``path``."""
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{path} is not a PEM public key; derive it with "
            "`openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"the public key {path} is not an Ed25519 key")
    return key


def parse(raw: bytes, name: str) -> Digest | str:
    try:
        # A field given twice reads differently to different readers (the signature covers
        # the last value): refused like text that is not JSON.
        data = jsonsafe.loads(raw.decode("utf-8"), unique_keys=True)
    except jsonsafe.DuplicateKey as err:
        return f"not valid JSON ({err})"
    except ValueError:  # not JSON (nor UTF-8, or with a byte order mark), or nested too deep
        return "not valid JSON"
    if not isinstance(data, dict) or set(data) != {*_FIELDS, "signature"}:
        return "not a digest (unexpected or missing fields)"
    if data["format"] != FORMAT:
        return f"unknown format {data['format']!r}"
    ints = ("number", "first_seq", "last_seq")
    if any(type(data[k]) is not int for k in ints) or not isinstance(data["signature"], str):
        return "not a digest (fields of the wrong type)"
    body = {k: data[k] for k in _FIELDS}
    return Digest(body=body, signature=data["signature"], file=name)


def read_digests(folder: Path) -> tuple[list[Digest], list[str]]:
    """Every digest file in ``folder`` and the problems of those that do not parse."""
    digests: list[Digest] = []
    problems: list[str] = []
    if not folder.is_dir():
        return digests, problems
    for path in sorted(folder.glob("*.json")):
        parsed = parse(path.read_bytes(), path.name)
        if isinstance(parsed, str):
            problems.append(f"digest {path.name}: {parsed}")
        else:
            digests.append(parsed)
    return digests, problems


def latest(digests: Iterable[Digest]) -> Digest | None:
    return max(digests, key=lambda d: d.number, default=None)


def write_digest(
    log_path: Path, key: Ed25519PrivateKey, *, run_id: str, tail: AuditLine | None,
    created_at: str,
) -> Path:
    """Sign the log's state after a run; returns the digest file written.

    The caller holds the run lock, so digests are written one at a time, in order.
    """
    folder = digest_folder(log_path)
    if folder.is_symlink():
        # As for the audit log itself: digests go only into a folder of archiver's own,
        # never wherever a link (a policy change can add one) leads.
        raise AuditError(f"the digest folder {folder} is a symlink; archiver writes digests "
                         "only into a folder of its own: remove the link")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise AuditError(f"cannot create the digest folder {folder}: {err.strerror}") from err
    previous = latest(read_digests(folder)[0])
    last_seq = tail.seq if tail else 0
    body: dict[str, Any] = {
        "format": FORMAT,
        "log": log_path.name,
        "number": previous.number + 1 if previous else 1,
        "run_id": run_id,
        "created_at": created_at,
        "first_seq": previous.last_seq + 1 if previous else 1,
        "last_seq": last_seq,
        "last_hash": tail.hash if tail else GENESIS_HASH,
        "previous_signature": previous.signature if previous else None,
        "key_id": key_id(key.public_key()),
    }
    signature = base64.b64encode(key.sign(canonical(body))).decode("ascii")
    data = json.dumps({**body, "signature": signature}, indent=2).encode() + b"\n"
    path = folder / f"{body['number']:08d}-{run_id}.json"
    _write_new(path, data)
    return path


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        raise AuditError(f"cannot write the digest {path}: {err.strerror}") from err


def signature_ok(digest: Digest, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(base64.b64decode(digest.signature, validate=True), canonical(digest.body))
    except (InvalidSignature, ValueError):
        return False
    return True


def check_digests(
    digests: list[Digest], public: Ed25519PublicKey, hashes: Mapping[int, str], lines: int,
    *, anchor: Digest | None = None,
) -> list[str]:
    """What is wrong with ``digests`` against a log of ``lines`` lines whose hashes by seq
    are ``hashes`` (at least at every seq a digest names); empty when nothing is.

    ``anchor`` is a digest known good that the first of ``digests`` follows (an evidence
    bundle carries the run's digests and the one before them); without it, the first
    digest must be the log's first.
    """
    problems: list[str] = []
    expected_key = key_id(public)
    valid: list[Digest] = []
    for d in digests:
        if not signature_ok(d, public):
            other = " (signed with another key)" if d.body["key_id"] != expected_key else ""
            problems.append(f"digest {d.file}: the signature does not verify{other}: "
                            "the digest was replaced or edited")
        else:
            valid.append(d)
    chain = sorted(valid, key=lambda d: d.number)
    prev = anchor
    for d in chain:
        want_prev = prev.signature if prev else None
        if d.previous_signature != want_prev:
            before = f"digest {prev.file}" if prev else "no digest (it should be the first)"
            problems.append(
                f"digest {d.file} (run {d.run_id}) does not follow {before}: "
                "a digest between them was deleted or replaced"
            )
        elif prev is not None and d.first_seq != prev.last_seq + 1:
            problems.append(f"digest {d.file} starts at seq {d.first_seq}, not right after "
                            f"seq {prev.last_seq}: a digest was deleted or replaced")
        elif prev is None and d.first_seq != 1:
            # A log's first digest signs it from its first line (write_digest).
            uncovered = (f": lines 1..{d.first_seq - 1} are not covered by a signed digest"
                         if d.first_seq > 1 else "")
            problems.append(f"digest {d.file} starts at seq {d.first_seq}, not at the log's "
                            f"first line{uncovered}")
        problems.extend(_against_log(d, hashes, lines))
        prev = d
    if prev is None or prev is anchor:
        if lines:
            problems.append("no signed digest covers this log: its digests were deleted, "
                            f"or no run signed it{_STILL_GOING}")
    elif lines > prev.last_seq:
        problems.append(
            f"lines {prev.last_seq + 1}..{lines} are not covered by a signed digest "
            f"(the last, {prev.file}, ends at seq {prev.last_seq}): a digest was deleted, "
            f"or the last run stopped before signing{_STILL_GOING}"
        )
    return problems


# A run signs the lines it wrote when it ends: until then they read as unsigned.
_STILL_GOING = ", or a run writing to the log has not ended yet (check again once it has)"


def _bad_line(d: Digest, hashes: Mapping[int, str], lines: int) -> int | None:
    """The line of the log that contradicts ``d``, if one does: the first missing one when
    the log ends before the line ``d`` signed, or that line when its hash differs."""
    if d.last_seq == 0:
        return None
    if d.last_seq > lines:
        return lines + 1
    if hashes.get(d.last_seq) != d.last_hash:
        return d.last_seq
    return None


def _against_log(d: Digest, hashes: Mapping[int, str], lines: int) -> list[str]:
    bad = _bad_line(d, hashes, lines)
    if bad is None:
        return []
    if bad > lines:
        return [f"the log ends at seq {lines}, but digest {d.file} (run {d.run_id}) signed it "
                f"up to seq {d.last_seq}: lines were cut off the end"]
    return [f"line {d.last_seq} has another hash than digest {d.file} (run {d.run_id}) "
            "signed: the chain was rewritten from there or before"]


def verify_log(
    log_path: Path, public: Ed25519PublicKey
) -> tuple[int, list[str], int | None]:
    """Check the digests in ``<log>.digests/`` against the log at ``log_path`` (whose chain
    the caller has verified): how many digests there are, what is wrong, and the first line
    a validly signed digest contradicts (None when none does); streams the log.
    """
    digests, problems = read_digests(digest_folder(log_path))
    # The log's name is signed: the digests of another log (another policy's, signed with
    # the same key) would otherwise vouch for that log's lines copied over this one.
    problems += [
        f"digest {d.file} signs the log {d.body['log']}, not {log_path.name}: another log's "
        "digests stand in for this one's (or the log was renamed after it was signed)"
        for d in digests if d.body["log"] != log_path.name
    ]
    wanted = {d.last_seq for d in digests}
    hashes: dict[int, str] = {}
    lines = 0
    with log_path.open("rb") as f:
        for lines, raw in enumerate(f, start=1):
            if lines in wanted:
                try:
                    value = jsonsafe.loads(raw).get("hash")
                except (ValueError, AttributeError):
                    value = None
                if isinstance(value, str):
                    hashes[lines] = value
    problems += check_digests(digests, public, hashes, lines)
    bad_lines = (_bad_line(d, hashes, lines) for d in digests if signature_ok(d, public))
    first_bad = min((n for n in bad_lines if n is not None), default=None)
    return len(digests), problems, first_bad
