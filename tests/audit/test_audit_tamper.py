from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.audit import verify_file
from archiver.audit.chain import line_hash

Lines = list[bytes]


def edit(k: int) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        lines[k - 1] = lines[k - 1].replace(b"batch %d" % k, b"batch 99")
        return lines

    return apply


def edit_and_rehash(k: int) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        line = json.loads(lines[k - 1])
        line["note"] = "rewritten"
        line["hash"] = line_hash(line)
        lines[k - 1] = json.dumps(line).encode() + b"\n"
        return lines

    return apply


def delete(k: int) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        del lines[k - 1]
        return lines

    return apply


def insert_copy(k: int, of: int) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        lines.insert(k - 1, lines[of - 1])
        return lines

    return apply


def insert_raw(k: int, raw: bytes) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        lines.insert(k - 1, raw)
        return lines

    return apply


def swap(k: int) -> Callable[[Lines], Lines]:
    def apply(lines: Lines) -> Lines:
        lines[k - 1], lines[k] = lines[k], lines[k - 1]
        return lines

    return apply


FORGED = b'{"seq":3,"event_id":"x","prev_hash":"' + b"0" * 64 + b'","hash":"' + b"1" * 64 + b'"}\n'

CASES = [
    ("edit first", edit(1), 1, "hash mismatch: the line was edited"),
    ("edit middle", edit(3), 3, "hash mismatch: the line was edited"),
    ("edit last", edit(6), 6, "hash mismatch: the line was edited"),
    ("edit not JSON", lambda ls: [*ls[:3], b"{oops\n", *ls[4:]], 4, "not valid JSON"),
    ("edit and rehash", edit_and_rehash(2), 3, "does not match the hash of line 2"),
    ("delete first", delete(1), 1, "seq 2 where 1 was expected: lines were deleted"),
    ("delete middle", delete(4), 4, "seq 5 where 4 was expected: lines were deleted"),
    ("delete two", lambda ls: ls[:2] + ls[4:], 3, "seq 5 where 3 was expected"),
    ("insert copy", insert_copy(3, of=5), 3, "seq 5 where 3 was expected"),
    (
        "insert copy of previous",
        insert_copy(4, of=3),
        4,
        "seq 3 where 4 was expected: a line was inserted",
    ),
    ("insert forged", insert_raw(3, FORGED), 3, "hash mismatch"),
    ("insert blank", insert_raw(2, b"\n"), 2, "not valid JSON"),
    # The hash covers the parsed line, in which a key's last value wins; a reader that
    # keeps the first (or a grep) would see the value put before it.
    (
        "duplicate key put before the real one",
        lambda ls: [*ls[:2], ls[2].replace(b'"note":', b'"note":"batch 99","note":', 1), *ls[3:]],
        3,
        "duplicate key `note`",
    ),
    ("swap first two", swap(1), 1, "seq 2 where 1 was expected"),
    ("swap middle", swap(3), 3, "seq 4 where 3 was expected"),
    ("swap last two", swap(5), 5, "seq 6 where 5 was expected"),
]


@pytest.mark.parametrize(
    ("tamper", "bad_line", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_tampering_names_the_first_bad_line(
    six_line_log: Path, tamper: Callable[[Lines], Lines], bad_line: int, message: str
) -> None:
    assert verify_file(six_line_log).ok
    six_line_log.write_bytes(b"".join(tamper(six_line_log.read_bytes().splitlines(keepends=True))))
    result = verify_file(six_line_log)
    assert not result.ok
    assert result.first_bad_line == bad_line
    assert result.lines == bad_line - 1
    assert message in result.message


def test_intact_log_verifies(six_line_log: Path) -> None:
    result = verify_file(six_line_log)
    last = json.loads(six_line_log.read_bytes().splitlines()[-1])
    assert (result.ok, result.lines, result.first_bad_line) == (True, 6, None)
    assert last["hash"] in result.message


def test_empty_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    assert verify_file(path).ok
    assert verify_file(path).lines == 0


def test_first_line_must_start_from_the_genesis_hash(tmp_path: Path) -> None:
    line = {"seq": 1, "event_id": "e", "prev_hash": "f" * 64}
    line["hash"] = line_hash(line)
    path = tmp_path / "audit.jsonl"
    path.write_bytes(json.dumps(line).encode() + b"\n")
    result = verify_file(path)
    assert (result.ok, result.first_bad_line) == (False, 1)
    assert "64 zeros" in result.message


@pytest.mark.parametrize(
    ("field", "value"), [("seq", "1"), ("seq", 0), ("seq", True), ("hash", None), ("event_id", 5)]
)
def test_bad_chain_fields_are_named(tmp_path: Path, field: str, value: object) -> None:
    line: dict[str, object] = {"seq": 1, "event_id": "e", "prev_hash": "0" * 64}
    line[field] = value
    if field != "hash":
        line["hash"] = "0" * 64
    path = tmp_path / "audit.jsonl"
    path.write_bytes(json.dumps(line).encode() + b"\n")
    result = verify_file(path)
    assert (result.ok, result.first_bad_line) == (False, 1)
    assert f"invalid {field}" in result.message
