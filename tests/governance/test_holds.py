"""Hold files: what they hold, when a hold ends, and a changed file read again."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from archiver.errors import ConfigError
from archiver.governance.holds import HoldSet


def _hold(path: Path, body: str) -> tuple[Path, str]:
    path.write_text(body)
    return path, path.name


def test_holds_match_by_attempt_contact_and_campaign(tmp_path):
    files = [_hold(tmp_path / "a.yaml", """
case: LIT-1
placed_by: legal@example.com
attempts: [att-1]
contacts: [c-9]
campaigns: [camp-7]
""")]
    holds = HoldSet(files, today=date(2026, 12, 2))
    assert holds.match("camp-1", "att-1", "c-1").case == "LIT-1"
    assert holds.match("camp-1", "att-2", "c-9").case == "LIT-1"
    assert holds.match("camp-7", "att-3", None).case == "LIT-1"
    assert holds.match("camp-1", "att-2", "c-1") is None
    assert holds.match("camp-1", "att-1", "c-1").reason == "legal hold LIT-1 (a.yaml)"


def test_a_hold_ends_after_its_until_day(tmp_path):
    files = [_hold(tmp_path / "a.yaml", "case: LIT-2\nplaced_by: x\nuntil: 2026-12-01\n"
                   "attempts: [att-1]\n")]
    assert HoldSet(files, today=date(2026, 12, 1)).match("c", "att-1", None) is not None
    assert HoldSet(files, today=date(2026, 12, 2)).match("c", "att-1", None) is None


def test_a_changed_hold_file_is_read_again(tmp_path):
    path, shown = _hold(tmp_path / "a.yaml", "case: LIT-3\nplaced_by: x\nattempts: []\n")
    holds = HoldSet([(path, shown)], today=date(2026, 12, 2))
    assert holds.match("c", "att-5", None) is None
    assert holds.refresh() is False  # unchanged: not read again
    path.write_text("case: LIT-3\nplaced_by: x\nattempts: [att-5]\n")
    os.utime(path, ns=(1, 10**18))  # a new mtime even on a coarse clock
    assert holds.refresh() is True
    assert holds.match("c", "att-5", None).case == "LIT-3"


@pytest.mark.parametrize(("body", "message"), [
    ("case: X\n", "`placed_by`: Field required"),
    ("case: X\nplaced_by: y\nattempt: [a]\n", "`attempt`: Extra inputs are not permitted"),
    ("case: [unclosed\n", "a.yaml:2:1: P003 YAML syntax error"),
    ("case: X\nplaced_by: y\nuntil: someday\n", "`until`"),
])
def test_a_broken_hold_file_is_a_clear_error(tmp_path, body, message):
    files = [_hold(tmp_path / "a.yaml", body)]
    with pytest.raises(ConfigError) as caught:
        HoldSet(files)
    assert message in str(caught.value)


def test_a_missing_hold_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        HoldSet([(tmp_path / "gone.yaml", "gone.yaml")])


def _refused(tmp_path: Path, body: str) -> str:
    files = [_hold(tmp_path / "a.yaml", body)]
    with pytest.raises(ConfigError) as caught:
        HoldSet(files, today=date(2026, 12, 2))
    return str(caught.value)


def test_a_duplicate_key_in_a_hold_file_is_refused_at_its_line(tmp_path):
    # The last `attempts` list alone would count: att-0 would be archived.
    message = _refused(tmp_path, "case: LIT-1\nplaced_by: a@b\nattempts: [att-0]\n"
                                 "attempts: [att-1]\n")
    assert message.startswith("hold file a.yaml:4:1: P005 duplicate key `attempts` "
                              "(first at line 3)")


def test_anchors_and_aliases_in_a_hold_file_are_refused(tmp_path):
    message = _refused(tmp_path, "case: LIT-1\nplaced_by: a@b\nattempts: &ids [att-0]\n"
                                 "contacts: *ids\n")
    assert message.startswith("hold file a.yaml:")
    assert "P004" in message and "`*ids`" in message


@pytest.mark.parametrize(("until", "message"), [
    ("2027-02-30", "`until`: 2027-02-30 is not a day: day is out of range for month"),
    ("2027-13-01", "`until`: 2027-13-01 is not a day: month must be in 1..12"),
    # A number would be read as seconds since 1970: a hold that ended long ago.
    ("0", "`until`: must be a day written YYYY-MM-DD, like 2027-06-30"),
    ("86400", "`until`: must be a day written YYYY-MM-DD"),
    ('"0"', "`until`: must be a day written YYYY-MM-DD"),
    ("20270630", "`until`: must be a day written YYYY-MM-DD"),
    ("2027-06-30T00:00:00Z", "`until`: must be a day written YYYY-MM-DD"),
    ("true", "`until`: must be a day written YYYY-MM-DD"),
    ("[2027-06-30]", "`until`: must be a day written YYYY-MM-DD"),
])
def test_an_until_that_is_not_a_day_is_refused_at_its_line(tmp_path, until, message):
    refused = _refused(tmp_path, f"case: LIT-1\nplaced_by: a@b\nuntil: {until}\n"
                                 "attempts: [att-1]\n")
    assert refused.startswith(f"hold file a.yaml:3:8: V023 {message}")


@pytest.mark.parametrize(("body", "expected"), [
    ("placed_by: a@b\nattempts: att-1\ncase: X\n", "a.yaml:2:11: V023 `attempts`: "),
    ("case: X\nplaced_by: a@b\nattempts: [att-1, 7]\n", "a.yaml:3:19: V023 `attempts.1`: "),
    ("case: 12\nplaced_by: a@b\n", "a.yaml:1:7: V023 `case`: "),
    ("case: X\nplaced_by:\n", "a.yaml:2:11: V023 `placed_by`: "),
    ("case: X\nplaced_by: a@b\ncontacts:\n", "a.yaml:3:10: V023 `contacts`: "),
    ("- case: X\n", "a.yaml:1:1: V023 a hold file is a mapping of `case`, `placed_by`"),
    ("", "a.yaml:1:1: V023 a hold file is a mapping of `case`, `placed_by`"),
])
def test_a_value_of_the_wrong_type_is_refused_at_its_line(tmp_path, body, expected):
    assert _refused(tmp_path, body).startswith(f"hold file {expected}")


def test_every_problem_of_a_hold_file_is_listed(tmp_path):
    files = [_hold(tmp_path / "a.yaml", "case: X\nplaced_by: a@b\nuntil: 2027-02-30\n"
                                        "campaigns: c-1\n")]
    with pytest.raises(ConfigError) as caught:
        HoldSet(files)
    assert str(caught.value).startswith("hold file a.yaml:3:8: V023 `until`")
    assert [d[:33] for d in caught.value.details] == ["hold file a.yaml:4:12: V023 `camp"]


def test_a_control_character_in_a_hold_file_is_told_as_in_a_hold_file(tmp_path):
    refused = _refused(tmp_path, "case: LIT-1\nplaced_by: a@b\x00\nattempts: [att-1]\n")
    assert refused.startswith("hold file a.yaml:2:15: P008 character U+0000 (NUL) is not "
                              "allowed in a hold file; remove it (a hold file is plain text)")
