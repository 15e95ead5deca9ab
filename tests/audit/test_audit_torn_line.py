from __future__ import annotations

from pathlib import Path

from archiver.audit import AuditLog, verify_file


def test_torn_last_line_is_reported_by_verify_and_dropped_on_open(six_line_log: Path) -> None:
    intact = six_line_log.read_bytes()
    seventh = b'{"seq":7,"event_id":"e7","event":"batch_archived","prev_hash":"'
    six_line_log.write_bytes(intact + seventh)  # a crash cut this write short

    result = verify_file(six_line_log)
    assert (result.ok, result.first_bad_line, result.lines) == (False, 7, 6)
    assert "incomplete last line" in result.message
    assert six_line_log.read_bytes() == intact + seventh  # verify only reads

    log = AuditLog(six_line_log)
    assert six_line_log.read_bytes() == intact
    tail = log.tail()
    assert tail is not None and (tail.seq, tail.event_id) == (6, "e6")
    assert log.append({"event": "run_finished"}, event_id="e7").seq == 7
    assert verify_file(six_line_log).ok


def test_a_torn_only_line_leaves_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":1,"ev')
    log = AuditLog(path)
    assert path.read_bytes() == b""
    assert log.tail() is None
    assert log.append({"a": 1}, event_id="e1").seq == 1
    assert verify_file(path).ok


def test_a_line_torn_after_opening_is_skipped_and_dropped(six_line_log: Path) -> None:
    log = AuditLog(six_line_log)
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
    AuditLog(six_line_log)
    assert six_line_log.read_bytes() == intact
