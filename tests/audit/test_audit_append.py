from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from archiver.audit import GENESIS_HASH, AuditLine, AuditLog, verify_file
from archiver.errors import AuditError, StorageError, UnsafeFileError


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_bytes().splitlines()]


def expected_hash(line: dict[str, Any]) -> str:
    body = {k: v for k, v in line.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_append_chains_fsyncs_and_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deep" / "er" / "audit.jsonl"
    log = AuditLog(path)
    assert path.parent.is_dir()
    assert log.tail() is None

    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            synced.append(info.st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    returned = [log.append({"n": n, "name": "Zoë"}, event_id=f"evt-{n}") for n in range(3)]

    # Each append reached the disk with its whole line before it returned.
    ends = [len(b"".join(path.read_bytes().splitlines(keepends=True)[: n + 1])) for n in range(3)]
    assert synced == ends

    stored = lines(path)
    assert [line["seq"] for line in stored] == [1, 2, 3]
    assert [line["event_id"] for line in stored] == ["evt-0", "evt-1", "evt-2"]
    assert stored[0]["prev_hash"] == GENESIS_HASH == "0" * 64
    for before, after in itertools.pairwise(stored):
        assert after["prev_hash"] == before["hash"]
    for line, got in zip(stored, returned, strict=True):
        assert line["hash"] == expected_hash(line)
        assert got == AuditLine(seq=line["seq"], hash=line["hash"], event_id=line["event_id"])
        assert line["name"] == "Zoë"
    assert "Zoë" in path.read_text(encoding="utf-8")  # ensure_ascii off on disk too

    assert log.tail() == returned[-1]
    reopened = AuditLog(path)
    assert reopened.tail() == returned[-1]
    assert reopened.append({"n": 3}, event_id="evt-3").seq == 4
    assert verify_file(path).ok


def test_two_handles_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    first.append({"by": "first"}, event_id="a")
    second.append({"by": "second"}, event_id="b")
    first.append({"by": "first"}, event_id="c")
    assert [line["seq"] for line in lines(path)] == [1, 2, 3]
    assert verify_file(path).ok


@pytest.mark.parametrize("key", ["seq", "prev_hash", "hash", "event_id"])
def test_records_may_not_set_chain_keys(tmp_path: Path, key: str) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"ok": True}, event_id="e1")
    before = path.read_bytes()
    with pytest.raises(AuditError, match=key):
        log.append({"x": 1, key: "forged"}, event_id="e2")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ([1, 2], "must be a JSON object"),
        ({"when": object()}, "not plain JSON"),
        ({"ratio": float("nan")}, "not plain JSON"),
    ],
)
def test_records_must_be_plain_json_objects(tmp_path: Path, record: Any, needle: str) -> None:
    path = tmp_path / "audit.jsonl"
    with pytest.raises(AuditError, match=needle):
        AuditLog(path).append(record, event_id="e1")
    assert not path.exists() or path.read_bytes() == b""


def test_non_string_keys_hash_the_way_they_are_read_back(tmp_path: Path) -> None:
    # Integer keys sort numerically in memory but as strings once read back.
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append(
        {"retention_days": {9: 1, 10: 2, 365: 3}, "ids": ("a", "b")}, event_id="e"
    )
    assert verify_file(path).ok
    assert lines(path)[0]["retention_days"] == {"9": 1, "10": 2, "365": 3}


def test_lines_longer_than_the_read_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import archiver.audit.log as audit_log

    monkeypatch.setattr(audit_log, "_BLOCK", 7)
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    ids = [f"attempt-{n}" for n in range(500)]
    log.append({"attempt_ids": ids}, event_id="e1")
    second = log.append({"attempt_ids": ids[::-1]}, event_id="e2")
    assert AuditLog(path).tail() == second
    assert verify_file(path).ok


def test_a_damaged_last_line_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"count": 0}, event_id="e0")
    log.append({"count": 1}, event_id="e1")
    path.write_bytes(path.read_bytes().replace(b'"count":1', b'"count":2'))
    before = path.read_bytes()
    with pytest.raises(AuditError, match=r"hash mismatch.*audit verify"):
        log.append({"count": 3}, event_id="e2")
    assert path.read_bytes() == before


def test_a_damaged_first_line_is_not_extended_either(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append({"count": 1}, event_id="e1")
    path.write_bytes(path.read_bytes().replace(b'"count":1', b'"count":2'))
    before = path.read_bytes()
    with pytest.raises(UnsafeFileError, match=r"does not begin an archiver audit chain.*hash mismatch"):
        AuditLog(path)
    assert path.read_bytes() == before


def test_a_folder_that_cannot_hold_the_log_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match=f"the audit log {blocker / 'audit.jsonl'}: "):
        AuditLog(blocker / "audit.jsonl")
