"""The audit log is archiver's own file or it is left alone: created 0600, never through a
link, never another user's file, never a file that does not begin an audit chain."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from archiver.audit import AuditLog, verify_file
from archiver.errors import UnsafeFileError

KEYS = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample one@host\nssh-ed25519 AAAAC3Nz two@host"


def vouched(path: Path) -> tuple[int, str] | None:
    return 1, "h" * 64


def test_a_new_log_is_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    previous = os.umask(0)
    try:
        AuditLog(path).append({"a": 1}, event_id="e1")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [KEYS, KEYS + b"\n"], ids=["no-final-newline", "newline"])
def test_a_file_that_does_not_begin_a_chain_is_never_touched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "authorized_keys"
    path.write_bytes(content)
    with pytest.raises(UnsafeFileError, match=f"refusing the audit log {path}: it is not empty"):
        AuditLog(path, checkpoint=vouched)
    path.write_bytes(b"")
    log = AuditLog(path, checkpoint=vouched)
    path.write_bytes(content)  # the file changed after the log was opened
    with pytest.raises(UnsafeFileError, match="does not begin an archiver audit chain"):
        log.append({"event": "run_started"}, event_id="e1")
    with pytest.raises(UnsafeFileError):
        log.tail()
    assert path.read_bytes() == content


def test_a_log_whose_first_line_is_not_seq_1_is_not_extended(six_line_log: Path) -> None:
    lines = six_line_log.read_bytes().splitlines(keepends=True)
    six_line_log.write_bytes(b"".join(lines[2:]))  # someone else's copy of a log's middle
    before = six_line_log.read_bytes()
    with pytest.raises(UnsafeFileError, match="seq 3, not the chain's start"):
        AuditLog(six_line_log, checkpoint=vouched)
    assert six_line_log.read_bytes() == before


@pytest.mark.parametrize("target_exists", [True, False], ids=["to-a-file", "dangling"])
def test_a_symbolic_link_is_refused_and_its_target_untouched(
    tmp_path: Path, six_line_log: Path, target_exists: bool
) -> None:
    target = six_line_log if target_exists else tmp_path / "elsewhere.jsonl"
    before = target.read_bytes() if target_exists else None
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(UnsafeFileError, match=f"refusing the audit log {link}: it is a symbolic link"):
        AuditLog(link, checkpoint=vouched).append({"a": 1}, event_id="e9")
    if target_exists:
        assert target.read_bytes() == before
        assert verify_file(target).ok
    else:
        assert not target.exists()


def test_a_log_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        AuditLog(fifo).append({"a": 1}, event_id="e1")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_log_is_refused(six_line_log: Path) -> None:
    os.chown(six_line_log, 65534, 65534)
    before = six_line_log.read_bytes()
    with pytest.raises(UnsafeFileError, match="belongs to another user"):
        AuditLog(six_line_log, checkpoint=vouched)
    assert six_line_log.read_bytes() == before
