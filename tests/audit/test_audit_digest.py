"""Signed digests catch what a hash chain alone cannot: a cut tail, a consistent
re-chain, a deleted digest and a replaced one; each is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.audit import digest
from archiver.audit.chain import GENESIS_HASH, AuditLine, line_hash
from archiver.errors import AuditError


def _append(log: Path, records: list[dict], start: AuditLine | None = None) -> AuditLine:
    prev = start
    with log.open("a") as f:
        for record in records:
            line = {"seq": prev.seq + 1 if prev else 1, "event_id": record["event"],
                    **record, "prev_hash": prev.hash if prev else GENESIS_HASH}
            line["hash"] = line_hash(line)
            f.write(json.dumps(line) + "\n")
            prev = AuditLine(line["seq"], line["hash"], line["event_id"])
    assert prev is not None
    return prev


def _rechain(log: Path, edit) -> None:
    """Rewrite the whole chain consistently after ``edit`` changed one record."""
    lines = [json.loads(raw) for raw in log.read_text().splitlines()]
    edit(lines)
    prev = None
    out = []
    for line in lines:
        line["prev_hash"] = prev or GENESIS_HASH
        line["hash"] = line_hash(line)
        prev = line["hash"]
        out.append(json.dumps(line))
    log.write_text("\n".join(out) + "\n")


def _verify(log: Path, public) -> list[str]:
    digests, problems = digest.read_digests(digest.digest_folder(log))
    hashes = {}
    count = 0
    for raw in log.read_text().splitlines():
        line = json.loads(raw)
        hashes[line["seq"]] = line["hash"]
        count += 1
    return problems + digest.check_digests(digests, public, hashes, count)


@pytest.fixture
def signed_log(tmp_path):
    """Three runs, each followed by its digest."""
    key = Ed25519PrivateKey.generate()
    log = tmp_path / "audit.jsonl"
    tail = None
    for run in ("r1", "r2", "r3"):
        tail = _append(log, [{"event": f"{run}-start"}, {"event": f"{run}-batch"},
                             {"event": f"{run}-end"}], tail)
        digest.write_digest(log, key, run_id=run, tail=tail, created_at="2026-12-02T00:00:00Z")
    return log, key


def test_an_untouched_log_and_its_digests_verify(signed_log):
    log, key = signed_log
    assert _verify(log, key.public_key()) == []
    files = sorted(p.name for p in digest.digest_folder(log).iterdir())
    assert [f.split("-", 1)[1] for f in files] == ["r1.json", "r2.json", "r3.json"]


def test_a_cut_tail_is_named(signed_log):
    log, key = signed_log
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-2]))  # the chain of what is left is intact
    problems = _verify(log, key.public_key())
    assert any("lines were cut off the end" in p and "up to seq 9" in p for p in problems)


def test_a_consistent_rechain_is_named(signed_log):
    log, key = signed_log

    def edit(lines):
        lines[3]["event"] = "r2-start-edited"

    _rechain(log, edit)
    problems = _verify(log, key.public_key())
    assert any("line 6 has another hash" in p and "rewritten" in p for p in problems)


def test_a_deleted_digest_in_the_middle_is_named(signed_log):
    log, key = signed_log
    middle = sorted(digest.digest_folder(log).iterdir())[1]
    middle.unlink()
    problems = _verify(log, key.public_key())
    assert any("does not follow" in p and "deleted" in p for p in problems)


def test_a_deleted_last_digest_leaves_lines_uncovered(signed_log):
    log, key = signed_log
    last = sorted(digest.digest_folder(log).iterdir())[-1]
    last.unlink()
    problems = _verify(log, key.public_key())
    assert any("lines 7..9 are not covered" in p for p in problems)


def test_every_digest_deleted_is_named(signed_log):
    log, key = signed_log
    for path in digest.digest_folder(log).iterdir():
        path.unlink()
    assert any("no signed digest covers this log" in p for p in _verify(log, key.public_key()))


def test_a_replaced_digest_is_named(signed_log):
    log, key = signed_log
    other = Ed25519PrivateKey.generate()
    last = sorted(digest.digest_folder(log).iterdir())[-1]
    last.unlink()
    # Re-signed by someone else's key, consistent in every other respect.
    digest.write_digest(log, other, run_id="r3", tail=None, created_at="2026-12-02T00:00:00Z")
    problems = _verify(log, key.public_key())
    assert any("signature does not verify (signed with another key)" in p for p in problems)


def test_an_edited_digest_is_named(signed_log):
    log, key = signed_log
    last = sorted(digest.digest_folder(log).iterdir())[-1]
    data = json.loads(last.read_text())
    data["last_seq"] = 6
    last.write_text(json.dumps(data))
    problems = _verify(log, key.public_key())
    assert any(f"digest {last.name}: the signature does not verify" in p for p in problems)


def test_keys_come_from_pem_files(tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    private = tmp_path / "key.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = tmp_path / "key.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    assert digest.key_id(digest.load_private_key(private).public_key()) == digest.key_id(
        digest.load_public_key(public))
    with pytest.raises(Exception, match="not an unencrypted PEM private key"):
        digest.load_private_key(public)


def test_a_digest_folder_that_is_a_symlink_is_refused_and_nothing_is_written_through_it(
    tmp_path,
):
    # A policy change can add `audit/log.jsonl.digests -> /anywhere`: the signed digests
    # would land there, outside the repository, in a folder archiver does not own.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "repo" / "audit.jsonl"
    log.parent.mkdir()
    tail = _append(log, [{"event": "start"}])
    digest.digest_folder(log).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(AuditError, match="is a symlink"):
        digest.write_digest(log, Ed25519PrivateKey.generate(), run_id="r1", tail=tail,
                            created_at="2026-12-02T00:00:00Z")
    assert list(elsewhere.iterdir()) == []


def test_a_digest_field_given_twice_is_named(signed_log):
    """The signature covers the digest as parsed, where a repeated field's last value
    wins; a reader keeping the first would see a range nothing signed."""
    log, key = signed_log
    last = sorted(digest.digest_folder(log).iterdir())[-1]
    text = last.read_text()
    assert '"last_seq": 9' in text
    last.write_text(text.replace('"last_seq": 9', '"last_seq": 6, "last_seq": 9', 1))
    problems = _verify(log, key.public_key())
    assert any(f"digest {last.name}: not valid JSON (duplicate key `last_seq`)" in p
               for p in problems), problems


def test_a_first_digest_that_does_not_start_at_seq_1_is_named(tmp_path):
    """A log's first digest signs it from its first line: one that starts later leaves
    the lines before it vouched for by nothing. Before: verified with no problem."""
    import base64

    key = Ed25519PrivateKey.generate()
    log = tmp_path / "audit.jsonl"
    tail = _append(log, [{"event": f"e{n}"} for n in range(1, 7)])
    body = {
        "format": digest.FORMAT, "log": log.name, "number": 1, "run_id": "r2",
        "created_at": "2026-12-02T00:00:00Z", "first_seq": 4, "last_seq": tail.seq,
        "last_hash": tail.hash, "previous_signature": None,
        "key_id": digest.key_id(key.public_key()),
    }
    signature = base64.b64encode(key.sign(digest.canonical(body))).decode("ascii")
    folder = digest.digest_folder(log)
    folder.mkdir()
    (folder / "00000001-r2.json").write_text(json.dumps({**body, "signature": signature}))
    problems = _verify(log, key.public_key())
    assert any("starts at seq 4, not at the log's first line" in p
               and "lines 1..3 are not covered" in p for p in problems), problems
