"""Records without a usable id are named by their content, never by their offset.

Unit tests of the names, of both backends' parsing (the digest a malformed record
without an id carries), and the engine in-process over two runs whose listings differ
by the attempts the first archived: the same rows, one per record, in both runs.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from archiver.backends.campaign_archive.records import parse_record
from archiver.backends.cxone import records as cxone_records
from archiver.engine.backend import AttemptRecord, MalformedRecord, content_digest
from archiver.engine.noid import NoIdNames
from archiver.engine.runner import run_policy
from archiver.policy import load_policy
from archiver.target import Target
from tests.engine.fakes import RecordingBackend
from tests.support import policy_dict, write_policy

NAME = re.compile(r"\(no id, sha256 [0-9a-f]{16}(, copy [2-9]\d*)?\)")
# What a record without an id may still hold about a person: never in its name.
PERSONAL = ("Ada Lovelace", "+15550100", "ada@example.com")
WHEN = "2024-03-01T10:00:00.000Z"


def short(raw: object) -> str:
    return content_digest(raw)[:16]


# -- names -----------------------------------------------------------------------


def test_the_digest_is_of_the_canonical_json_whatever_the_order_of_keys() -> None:
    assert content_digest({"b": 1, "a": [True, None]}) == content_digest({"a": [True, None], "b": 1})
    assert content_digest({}) == hashlib.sha256(b"{}").hexdigest()
    assert content_digest({"a": "é"}) == hashlib.sha256(b'{"a":"\\u00e9"}').hexdigest()
    assert content_digest({"a": 1}) != content_digest({"a": "1"})
    # Not JSON a listing parses to (keys of mixed types): a digest all the same.
    assert len(content_digest({1: "x", "y": 2})) == 64


def test_a_record_is_named_by_its_digest_and_copies_by_their_order() -> None:
    names = NoIdNames()
    a = MalformedRecord("", "id", "field `id` is missing", content_digest({"x": 1}))
    b = MalformedRecord("", "id", "field `id` is missing", content_digest({"x": 2}))
    got = [names.name(r) for r in (a, b, a, a)]
    assert got == [
        f"(no id, sha256 {short({'x': 1})})",
        f"(no id, sha256 {short({'x': 2})})",
        f"(no id, sha256 {short({'x': 1})}, copy 2)",
        f"(no id, sha256 {short({'x': 1})}, copy 3)",
    ]
    # A new listing starts again.
    assert NoIdNames().name(a) == got[0]


def test_records_with_an_id_have_no_fallback_name() -> None:
    names = NoIdNames()
    assert names.name(MalformedRecord("att-1", "duration", "negative")) == ""
    assert names.name(AttemptRecord(id="att-2", contact_id="c", outcome="BUSY")) == ""


def test_digests_that_share_their_first_digits_are_copies_not_one_row() -> None:
    names = NoIdNames()
    one = MalformedRecord("", "id", "missing", "0123456789abcdef" + "0" * 48)
    other = MalformedRecord("", "id", "missing", "0123456789abcdef" + "1" * 48)
    assert [names.name(one), names.name(other)] == [
        "(no id, sha256 0123456789abcdef)", "(no id, sha256 0123456789abcdef, copy 2)"]


def test_a_record_without_a_digest_is_named_by_its_field_and_reason() -> None:
    record = MalformedRecord("", "id", "field `id` is missing")
    assert NoIdNames().name(record) == (
        f"(no id, sha256 {short(['id', 'field `id` is missing'])})")


# -- both backends' parsing --------------------------------------------------------

CAMPAIGN_ARCHIVE_BAD: list[object] = [
    {"contactId": "c-1", "outcomeCode": "BUSY", "name": PERSONAL[0]},  # no id
    {"id": None, "contactId": "c-2", "phone": PERSONAL[1]},
    {"id": "", "contactId": "c-3", "email": PERSONAL[2]},
    {"id": True, "contactId": "c-4"},
    {"id": ["att-5"], "contactId": "c-5"},
    {},
    {},
    [],
    "not a record",
    None,
]
CXONE_CONTACT_BAD: list[object] = [
    {"lastUpdateTime": WHEN, "firstName": PERSONAL[0]},
    {"contactId": None, "lastUpdateTime": WHEN, "phone": PERSONAL[1]},
    {"contactId": "  ", "lastUpdateTime": WHEN, "email": PERSONAL[2]},
    {"contactId": False, "lastUpdateTime": WHEN},
    {},
    {},
    ["not", "an", "object"],
]
CXONE_ATTEMPT_BAD: list[object] = [
    {"externalId": "ext-1", "firstName": PERSONAL[0]},  # quarantined as ext-1
    {"contactId": 7001, "phone": PERSONAL[1]},  # no externalId: quarantined as 7001
    {"externalId": None, "contactId": None, "email": PERSONAL[2]},
    {"externalId": "", "contactId": True},
    {},
    {},
]


def cxone_contact(raw: object) -> AttemptRecord | MalformedRecord:
    return cxone_records.contact(raw, "1834501", lambda n: None)


def cxone_attempt(raw: object) -> AttemptRecord | MalformedRecord:
    return cxone_records.attempt(raw, "list-9")


PARSERS: dict[str, tuple[Callable[[object], AttemptRecord | MalformedRecord], list[object]]] = {
    "campaign-archive": (parse_record, CAMPAIGN_ARCHIVE_BAD),
    "cxone contacts": (cxone_contact, CXONE_CONTACT_BAD),
    "cxone calling list": (cxone_attempt, CXONE_ATTEMPT_BAD),
}


@pytest.mark.parametrize("backend", PARSERS)
def test_a_record_without_an_id_carries_the_digest_of_its_content(backend: str) -> None:
    parse, bad = PARSERS[backend]
    for raw in bad:
        record = parse(raw)
        assert isinstance(record, MalformedRecord), raw
        if record.attempt_id:
            assert record.digest == "", "a record with an id is known by it"
        else:
            assert record.digest == content_digest(raw), raw


def test_a_malformed_record_with_an_id_keeps_it_and_needs_no_digest() -> None:
    record = parse_record({"id": "att-1", "contactId": "c", "duration": "12"})
    assert isinstance(record, MalformedRecord)
    assert (record.attempt_id, record.digest) == ("att-1", "")
    record = cxone_contact({"contactId": 42, "lastUpdateTime": "yesterday"})
    assert isinstance(record, MalformedRecord)
    assert (record.attempt_id, record.digest) == ("42", "")


# -- the engine, two runs -----------------------------------------------------------


def good(n: int) -> AttemptRecord:
    return AttemptRecord(id=f"att-{n:03d}", contact_id=f"c-{n}", outcome="SURVEY_TAKEN",
                         anonymized=True, retention_days=30)


def listing(bad: Sequence[AttemptRecord | MalformedRecord], archived: set[str]
            ) -> list[AttemptRecord | MalformedRecord]:
    """Six good attempts before each bad record, without those already archived."""
    out: list[AttemptRecord | MalformedRecord] = []
    for i, record in enumerate(bad):
        out.extend(g for g in (good(6 * i + k) for k in range(6)) if g.id not in archived)
        out.append(record)
    return out


def no_id_rows(state: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(state / "state.db") as db:
        rows = db.execute("SELECT attempt_id, state, run_id FROM attempts"
                          " WHERE attempt_id LIKE '(no id%'").fetchall()
    return {name: (st, run) for name, st, run in rows}


@pytest.mark.parametrize("backend", PARSERS)
def test_a_second_run_lists_them_elsewhere_and_finds_the_same_rows(
    tmp_path: Path, backend: str
) -> None:
    parse, raws = PARSERS[backend]
    bad = [r for r in map(parse, raws) if isinstance(r, MalformedRecord) and not r.attempt_id]
    assert len(bad) >= 4
    doc = policy_dict(["camp-a"])
    doc["batch"]["max_items"] = 5
    policy = load_policy(write_policy(tmp_path / "policy.yaml", doc))
    state = tmp_path / "state"
    target = Target("campaign-archive", "embedded")
    reports: list[dict[str, Any]] = []
    rows: list[dict[str, tuple[str, str]]] = []
    archived: set[str] = set()
    for _ in range(3):
        backend_ = RecordingBackend({"camp-a": listing(bad, archived)}, page_size=4)
        result = run_policy(policy, backend=backend_, sinks=[], state_dir=state, target=target)
        archived |= set(backend_.acted)
        reports.append(result.report)
        rows.append(no_id_rows(state))

    assert len(archived) == 6 * len(bad), "the first run archived every good attempt"
    assert [r["totals"]["listed"] for r in reports] == [7 * len(bad), len(bad), len(bad)]
    assert [r["totals"]["quarantined"] for r in reports] == [len(bad)] * 3
    assert [len(r) for r in rows] == [len(bad)] * 3
    assert set(rows[0]) == set(rows[1]) == set(rows[2])
    assert {run for _, run in rows[2].values()} == {reports[2]["run_id"]}
    assert all(NAME.fullmatch(name) for name in rows[2]), sorted(rows[2])
    assert not any(p in name for p in PERSONAL for name in rows[2])
    # The two {} records: one name, and its copy.
    empty = f"(no id, sha256 {short({})}"
    assert sorted(n for n in rows[2] if n.startswith(empty)) == [f"{empty})", f"{empty}, copy 2)"]
