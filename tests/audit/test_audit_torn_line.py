"""A torn last line (a write cut short) is dropped only from a log provably archiver's own:
its first line starts the chain and the state store has a receipt for the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archiver.audit import AuditLog, verify_file
from archiver.errors import UnsafeFileError

SEVENTH = b'{"seq":7,"event_id":"e7","event":"batch_archived","prev_hash":"'


def vouched(path: Path) -> tuple[int, str] | None:
    """A state store that recorded writing line 6 of the log (its hash as written)."""
    sixth = json.loads(path.read_bytes().splitlines()[5])
    return 6, sixth["hash"]


def no_receipt(path: Path) -> tuple[int, str] | None:
    """A state store that never wrote to this file."""
    return None


def test_torn_last_line_is_reported_by_verify_and_dropped_when_the_store_vouches(
    six_line_log: Path,
) -> None:
    intact = six_line_log.read_bytes()
    six_line_log.write_bytes(intact + SEVENTH)  # a crash cut this write short

    result = verify_file(six_line_log)
    assert (result.ok, result.first_bad_line, result.lines) == (False, 7, 6)
    assert "incomplete last line" in result.message
    assert six_line_log.read_bytes() == intact + SEVENTH  # verify only reads

    log = AuditLog(six_line_log, checkpoint=vouched)
    assert six_line_log.read_bytes() == intact + SEVENTH  # opening repairs nothing
    tail = log.tail()
    assert tail is not None and (tail.seq, tail.event_id) == (6, "e6")
    assert log.append({"event": "run_finished"}, event_id="e7").seq == 7
    assert six_line_log.read_bytes().startswith(intact)
    assert verify_file(six_line_log).ok


@pytest.mark.parametrize("checkpoint", [None, no_receipt], ids=["no-store", "no-receipt"])
def test_a_torn_tail_without_a_receipt_is_refused_and_left_as_it_is(
    six_line_log: Path, checkpoint
) -> None:
    torn = six_line_log.read_bytes() + SEVENTH
    six_line_log.write_bytes(torn)
    log = AuditLog(six_line_log, checkpoint=checkpoint)
    with pytest.raises(UnsafeFileError, match=r"last line is incomplete.*audit verify"):
        log.append({"event": "run_finished"}, event_id="e7")
    assert six_line_log.read_bytes() == torn


def test_a_torn_only_line_is_not_a_log_of_ours_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":1,"ev')
    with pytest.raises(UnsafeFileError, match="does not begin an archiver audit chain"):
        AuditLog(path, checkpoint=vouched)
    assert path.read_bytes() == b'{"seq":1,"ev'


def test_a_line_torn_after_opening_is_skipped_and_dropped(six_line_log: Path) -> None:
    log = AuditLog(six_line_log, checkpoint=vouched)
    intact = six_line_log.read_bytes()
    with six_line_log.open("ab") as f:
        f.write(b'{"seq":7,')
    tail = log.tail()
    assert tail is not None and tail.seq == 6
    log.append({"event": "run_finished"}, event_id="e7")
    assert six_line_log.read_bytes().startswith(intact)
    result = verify_file(six_line_log)
    assert (result.ok, result.lines) == (True, 7)


def test_a_complete_last_line_is_kept(six_line_log: Path) -> None:
    intact = six_line_log.read_bytes()
    AuditLog(six_line_log, checkpoint=vouched)
    assert six_line_log.read_bytes() == intact
