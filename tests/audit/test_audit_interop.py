"""An auditor working from README.md ("Checking a log without archiver") gets the answer
`archiver audit verify` gives: a second implementation written from that text
(independent_verifier.mjs, Node's standard library only) and README's own Python check
run on the logs of real runs against the simulator, whose audit template writes the
values where canonical JSON forms part ways (12.0, 1e-07, -0.0, keys past U+FFFF, ...)."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archiver.audit import AuditLog, verify_file
from tests.support import REPO, demo_at_test_pace, ed25519_key_pair, run_cli

LOG = "examples/audit/demo-audit.jsonl"
VERIFIER = Path(__file__).with_name("independent_verifier.mjs")

# Inserted into the example audit template: literals and a computed float, each written
# in the line as Python writes it, where RFC 8785 (JCS) would write another form.
PROBE = r'''"probe": {
    "twelve": 12.0, "computed": {{ 24 / 2 }}, "tenth": 0.1, "e21": 1e21,
    "e_minus7": 1e-7, "e_minus5": 0.00001, "e20": 1e20, "neg_zero": -0.0,
    "as_1E2": 1E2, "tiny": 5e-324, "huge": 1.5e300,
    "safe": 9007199254740991, "neg_safe": -9007199254740991, "two_60": 1152921504606846976,
    "big_as_text": "9007199254740993",
    "\uff61": "U+FF61", "😀": "U+1F600", "\ud83d\ude00x": 1, "\ue000": 2, "é": 3, "e": 4,
    "text": "café ünï 😀 \u00e9 a\u0001b\u001fc\n\t\r\b\f \"q\" \\ \/ \u007f \u2028 \u2029",
    "list": [1.0, 2.50, -1e-7, 1e+21, 100000000000000000000, {"b": 0.5, "a": null}]
  },'''
# How the line writes them (and so how its hash covers them).
WRITTEN = ['"twelve":12.0', '"computed":12.0', '"e_minus7":1e-07', '"e_minus5":1e-05',
           '"e20":1e+20', '"neg_zero":-0.0', '"as_1E2":100.0', '"e21":1e+21',
           '"\uff61":"U+FF61","😀":"U+1F600","😀x":1']


def log_lines(log: Path) -> list[bytes]:
    """The log's lines, split at newlines only (a line may hold U+2028 or U+0085, which
    str.splitlines takes for line ends)."""
    data = log.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(extra)
    return env


def node_verify(log: Path, public: Path | None = None) -> dict[str, Any]:
    """The independent verifier's answer (--json). Node is on every machine the suite
    runs on: without it these tests fail, they are never skipped."""
    node = shutil.which("node")
    assert node is not None, "node is not installed: it runs the README's second verifier"
    args = [node, str(VERIFIER), str(log), *([str(public)] if public else []), "--json"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 1), result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    assert answer["ok"] == (result.returncode == 0)
    return answer


def archiver_verify(repo: Path, *extra: str) -> dict[str, Any]:
    result = run_cli(["audit", "verify", LOG, "--format", "json", *extra], _env(), cwd=repo)
    assert result.returncode in (0, 1), result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def with_template(repo: Path, probe: str) -> Path:
    """The demo policy in ``repo``, its audit lines shaped by the example template with
    ``probe`` inserted after the event's name."""
    example = (REPO / "examples" / "templates" / "audit.json.j2").read_text()
    anchor = '"event": {{ event | tojson }},'
    assert anchor in example
    templates = repo / "examples" / "templates"
    (templates / "probe.json.j2").write_text(example.replace(anchor, anchor + "\n  " + probe))
    policy = demo_at_test_pace(repo / "examples" / "demo.yaml")
    text = policy.read_text()
    assert "template: templates/audit.json.j2" in text
    policy.write_text(text.replace("template: templates/audit.json.j2",
                                   "template: templates/probe.json.j2"))
    return policy


def copy_examples(root: Path) -> Path:
    repo = root / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit"))
    return repo


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ed25519_key_pair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    """Two signed demo runs whose audit template writes the probe; copied by each test."""
    repo = copy_examples(tmp_path_factory.mktemp("signed"))
    with_template(repo, PROBE)
    for _ in range(2):
        result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"),
                          "--quiet"], _env(ARCHIVER_SIGNING_KEY=str(keys[0])), cwd=repo)
        assert result.returncode == 0, result.stderr
    return repo


@pytest.fixture
def repo(signed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(signed, copy)
    return copy


def test_the_independent_verifier_gets_archivers_hashes_and_signatures(repo, keys):
    log = repo / LOG
    lines = [raw.decode("utf-8") for raw in log_lines(log)]
    for form in WRITTEN:  # the run wrote every value in the form the README describes
        assert all(form in line for line in lines), form
    ours = archiver_verify(repo, "--public-key", str(keys[1]))
    assert ours["ok"], ours
    assert "2 signed digest(s) verified" in ours["message"]
    theirs = node_verify(log, keys[1])
    assert theirs["ok"], theirs
    assert theirs["digests"] == 2
    assert theirs["hashes"] == [json.loads(line)["hash"] for line in lines]
    assert f"last seq {theirs['last_seq']}, hash {theirs['last_hash']}" in ours["message"]


def test_the_readmes_python_check_names_the_last_line_archiver_does(repo):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    opening = f"python3 - {LOG} <<'EOF'\n"
    assert opening in readme, "README no longer shows the Python check of a chain"
    script = readme.split(opening, 1)[1].split("\nEOF\n", 1)[0]
    result = subprocess.run([sys.executable, "-", LOG], input=script, capture_output=True,
                            text=True, cwd=repo, timeout=60)
    assert result.returncode == 0, result.stderr
    ours = archiver_verify(repo)
    tail = result.stdout.strip().removeprefix("chain intact; ")
    assert tail.startswith("last seq ") and tail in ours["message"], (result.stdout, ours)


def test_a_number_written_in_another_form_is_caught_at_its_line_by_both(repo, keys):
    """``12.0`` and ``12`` are one value to most readers, not to the hash."""
    log = repo / LOG
    lines = [raw + b"\n" for raw in log_lines(log)]
    lines[2] = lines[2].replace(b'"twelve":12.0', b'"twelve":12', 1)
    log.write_bytes(b"".join(lines))
    ours = archiver_verify(repo, "--public-key", str(keys[1]))
    theirs = node_verify(log, keys[1])
    assert (ours["ok"], ours["first_bad_line"]) == (False, 3), ours
    assert (theirs["ok"], theirs["first_bad_line"]) == (False, 3), theirs
    assert "hash mismatch" in ours["message"] and "hash mismatch" in theirs["problem"]


def test_a_byte_order_mark_before_a_line_is_caught_by_both(repo, keys):
    """Python's json.loads of bytes skips a UTF-8 byte order mark, JSON.parse, jq and
    json.loads of text refuse the line: the log holds bytes archiver never wrote."""
    log = repo / LOG
    lines = [raw + b"\n" for raw in log_lines(log)]
    lines[2] = b"\xef\xbb\xbf" + lines[2]
    log.write_bytes(b"".join(lines))
    for extra in ((), ("--public-key", str(keys[1]))):
        ours = archiver_verify(repo, *extra)
        assert (ours["ok"], ours["first_bad_line"]) == (False, 3), ours
        assert "byte order mark" in ours["message"]
    theirs = node_verify(log, keys[1])
    assert (theirs["ok"], theirs["first_bad_line"]) == (False, 3), theirs


def test_a_byte_order_mark_before_a_digest_is_caught_by_both(repo, keys):
    digest = sorted((repo / (LOG + ".digests")).iterdir())[0]
    digest.write_bytes(b"\xef\xbb\xbf" + digest.read_bytes())
    ours = archiver_verify(repo, "--public-key", str(keys[1]))
    assert not ours["ok"] and f"digest {digest.name}: not valid JSON" in ours["message"], ours
    theirs = node_verify(repo / LOG, keys[1])
    assert not theirs["ok"] and "byte order mark" in theirs["problem"], theirs


@pytest.mark.parametrize("number", ["9007199254740993", "-9007199254740995",
                                    "123456789012345678901234567890"])
def test_validate_refuses_an_audit_template_with_an_integer_a_double_cannot_hold(
    tmp_path, number
):
    repo = copy_examples(tmp_path)
    with_template(repo, f'"n": {{"count": {number}}},')
    result = run_cli(["validate", "examples/demo.yaml"], _env(), cwd=repo)
    assert result.returncode == 78, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "templates/probe.json.j2" in out
    assert f"the integer {number} at `n.count`" in out
    assert f"read it as {int(float(int(number)))}" in out


def test_a_run_refuses_such_a_template_before_any_request_and_writes_no_line(tmp_path):
    repo = copy_examples(tmp_path)
    with_template(repo, '"n": 9007199254740993,')
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                     _env(), cwd=repo)
    assert result.returncode == 78, result.stderr
    assert "templates/probe.json.j2" in result.stderr
    assert "9007199254740993" in result.stderr and "9007199254740992" in result.stderr
    assert not (repo / LOG).exists()


def test_lines_holding_large_integers_verify_digit_for_digit_in_both(tmp_path):
    """Such lines hash every digit; the log itself still takes them (a line rendered before
    the template check refused them may be pending in a state store), and both verifiers
    read them digit for digit."""
    log = tmp_path / "audit" / "old.jsonl"
    audit = AuditLog(log)
    for n, value in enumerate([9007199254740993, -(10**30), 2**63, 10**21], start=1):
        audit.append({"event": "batch_archived", "value": value, "list": [value]},
                     event_id=f"e{n}")
    assert b'"value":9007199254740993' in log.read_bytes()
    assert verify_file(log).ok
    theirs = node_verify(log)
    assert theirs["ok"], theirs
    assert theirs["hashes"] == [json.loads(raw)["hash"] for raw in log_lines(log)]


def _random_float(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.4:  # any finite double, by its bits
        while True:
            x: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if x == x and abs(x) != float("inf"):
                return x
    if kind < 0.8:
        return rng.choice([1, -1]) * rng.random() * 10.0 ** rng.randint(-12, 25)
    return rng.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e-5, 1e-4, 1e15, 1e16,
                       9999999999999998.0, 0.1 + 0.2, 2.0**53, 2.0**60, float(10**22)])


def test_the_two_agree_on_many_floats_and_keys(tmp_path):
    """The forms README spells out, over doubles drawn by their bits and keys mixing
    characters below and above U+FFFF, as archiver's own log writes them."""
    rng = random.Random(20261204)
    chars = ["a", "Z", "0", "é", "\uff61", "\ue000", "\uffff", "😀", "\U0010ffff", "\x01",
             '"', "\\", "\u2028", "\x7f"]

    def key() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 4)))

    log = tmp_path / "audit" / "many.jsonl"
    audit = AuditLog(log)
    for n in range(200):
        record: dict[str, Any] = {}
        for _ in range(8):
            record[key()] = rng.choice([
                _random_float(rng), rng.randint(-(2**53) + 1, 2**53 - 1), key(), None, True,
                [_random_float(rng), {key(): _random_float(rng)}],
            ])
        for reserved in ("event_id", "seq", "prev_hash", "hash"):
            record.pop(reserved, None)
        audit.append(record, event_id=f"e{n}")
    assert verify_file(log).ok
    theirs = node_verify(log)
    assert theirs["ok"], theirs
    assert theirs["hashes"] == [json.loads(raw)["hash"] for raw in log_lines(log)]
