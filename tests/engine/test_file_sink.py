"""Sink ``file`` on its own: a template shapes each line, a temporary file left by a
killed run is replaced, and a batch's file already there is read back, never rewritten."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat

from archiver.engine.building import BuildContext
from archiver.policy.model import Campaign, Connection, Policy
from archiver.stages.sinks.file import FileArchive, FileSink

RECORDS = [{"id": "a-1", "contact_id": "c-1", "outcome": "Busy", "retention_days": 30},
           {"id": "a-2", "contact_id": "c-2", "outcome": "Busy", "retention_days": 30}]


def sink(tmp_path, **spec: object) -> FileArchive:
    policy = Policy(
        name="p", connection=Connection(api="cxone", tenant_id="t"),
        campaigns=(Campaign(id="1834501", action="export"),),
        path=tmp_path / "policy.yaml", root=tmp_path,
    )
    return FileArchive.from_spec(
        FileSink(path="archive/{campaign}/{date}/", **spec), BuildContext(policy=policy)
    )


def test_a_template_shapes_each_line_and_the_facts_describe_the_file(tmp_path):
    (tmp_path / "line.json.j2").write_text(
        '{"attempt": {{ record.id | tojson }}, "batch": {{ batch_id | tojson }}}'
    )
    facts = sink(tmp_path, template="line.json.j2").write_batch("1834501", "b-1", RECORDS)
    path = tmp_path / facts["path"]
    assert path.name == "b-1.jsonl.gz" and path.parent.parent.name == "1834501"
    lines = [json.loads(x) for x in gzip.decompress(path.read_bytes()).splitlines()]
    assert lines == [{"attempt": "a-1", "batch": "b-1"}, {"attempt": "a-2", "batch": "b-1"}]
    assert facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts["records"] == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_file_already_written_is_read_back_and_a_stale_temporary_one_replaced(tmp_path):
    archive = sink(tmp_path)
    first = archive.write_batch("1834501", "b-1", RECORDS)
    path = tmp_path / first["path"]
    before = path.stat().st_mtime_ns
    # Asked again with other records (a re-listed attempt changed): the file stands.
    again = archive.write_batch("1834501", "b-1", RECORDS[:1])
    assert again == first and path.stat().st_mtime_ns == before
    # A run killed while writing left a temporary file: the next write replaces it.
    stale = path.parent / ".b-2.jsonl.gz.tmp"
    stale.write_bytes(b"half a gzip")
    other = archive.write_batch("1834501", "b-2", RECORDS)
    assert not stale.exists()
    assert other["records"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["b-1.jsonl.gz", "b-2.jsonl.gz"]


def test_discarding_a_batch_removes_its_file_and_every_temporary_one_a_cut_write_left(
    tmp_path,
):
    """What runs that died wrote of a batch: its file, and temporary files of it, one in
    the folder of each day such a write was cut off (one a link: removed, not followed).
    Another batch's temporary file stays."""
    archive = sink(tmp_path)
    written = tmp_path / archive.write_batch("1834501", "b-1", RECORDS)["path"]
    campaign = written.parent.parent
    (campaign / "2026-01-01").mkdir()
    earlier = campaign / "2026-01-01" / ".b-1.jsonl.gz.tmp"
    earlier.write_bytes(b"half a gzip")
    target = tmp_path / "elsewhere.txt"
    target.write_text("not the archive's")
    linked = written.parent / ".b-1.jsonl.gz.tmp"
    linked.symlink_to(target)
    other = written.parent / ".b-2.jsonl.gz.tmp"
    other.write_bytes(b"")

    assert archive.discard_batch("1834501", "b-1") is True
    assert not written.exists() and not earlier.exists() and not os.path.lexists(linked)
    assert target.read_text() == "not the archive's" and other.exists()
    assert archive.discard_batch("1834501", "b-1") is False

    # Only a temporary file left (a write cut off before the rename): it goes too.
    again = written.parent / ".b-2.jsonl.gz.tmp"
    assert archive.discard_batch("1834501", "b-2") is True and not again.exists()


def test_writing_a_batch_removes_a_temporary_one_a_cut_write_left_on_another_day(tmp_path):
    """A write cut off (a kill, a full disk) on one day leaves the batch's temporary file
    in that day's folder; the batch written on a later day leaves no second copy of its
    records behind, whether it is written now or found written."""
    archive = sink(tmp_path)
    campaign = tmp_path / archive.write_batch("1834501", "b-0", RECORDS)["path"]
    campaign = campaign.parent.parent
    (campaign / "2026-01-01").mkdir()
    earlier = campaign / "2026-01-01" / ".b-1.jsonl.gz.tmp"
    earlier.write_bytes(b"half a gzip of b-1")
    other = campaign / "2026-01-01" / ".b-2.jsonl.gz.tmp"
    other.write_bytes(b"")

    written = archive.write_batch("1834501", "b-1", RECORDS)
    assert not earlier.exists() and other.exists()
    assert written["records"] == len(RECORDS)

    # Found written already (a run died after the rename): a leftover goes all the same.
    earlier.write_bytes(b"half a gzip of b-1")
    assert archive.write_batch("1834501", "b-1", RECORDS) == written
    assert not earlier.exists() and other.exists()
