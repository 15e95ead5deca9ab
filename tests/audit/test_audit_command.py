from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from archiver.commands.audit import command
from archiver.errors import EXIT_USAGE, UsageError


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def test_intact_log_exits_0(six_line_log: Path) -> None:
    code, out, _ = run(str(six_line_log))
    assert code == 0
    assert out.startswith(f"{six_line_log}: OK, 6 lines, chain intact")


def test_broken_chain_exits_1_naming_file_and_line(six_line_log: Path) -> None:
    lines = six_line_log.read_bytes().splitlines(keepends=True)
    del lines[2]
    six_line_log.write_bytes(b"".join(lines))
    code, out, _ = run(str(six_line_log))
    assert code == 1
    assert (
        out
        == f"{six_line_log}:3: seq 4 where 3 was expected: lines were deleted before this one, or lines were reordered\n"
    )


def test_json_format(six_line_log: Path) -> None:
    last_hash = json.loads(six_line_log.read_bytes().splitlines()[-1])["hash"]
    code, out, _ = run("--format", "json", str(six_line_log))
    assert code == 0
    assert json.loads(out) == {
        "file": str(six_line_log),
        "ok": True,
        "lines": 6,
        "first_bad_line": None,
        "message": f"6 lines, chain intact; last seq 6, hash {last_hash}",
    }
    six_line_log.write_bytes(six_line_log.read_bytes().replace(b"batch 5", b"batch 6"))
    code, out, _ = run("--format", "json", str(six_line_log))
    assert code == 1
    body = json.loads(out)
    assert (body["ok"], body["first_bad_line"], body["lines"]) == (False, 5, 4)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = CliRunner().invoke(command, ["verify", str(missing)])
    assert isinstance(result.exception, UsageError)
    assert result.exception.exit_code == EXIT_USAGE == 2
    assert str(result.exception) == f"{missing}: no such audit log"
    assert result.stdout == ""


def test_archiver_audit_verify_exit_codes(six_line_log: Path, tmp_path: Path) -> None:
    from archiver.cli import cli

    def exit_code(path: Path) -> int:
        return CliRunner().invoke(cli, ["audit", "verify", str(path)]).exit_code

    assert exit_code(six_line_log) == 0
    assert exit_code(tmp_path / "nope.jsonl") == 2
    six_line_log.write_bytes(six_line_log.read_bytes().replace(b"batch 1", b"batch 2"))
    assert exit_code(six_line_log) == 1


def test_help_explains_exit_codes() -> None:
    result = CliRunner().invoke(command, ["verify", "--help"])
    assert result.exit_code == 0
    assert "Exit 0" in result.stdout and "FILE:LINE" in result.stdout
    assert "verify" in CliRunner().invoke(command, ["--help"]).stdout


def test_verify_against_a_folder_without_a_state_store_is_an_error_not_a_pass(
    six_line_log: Path, tmp_path: Path
) -> None:
    from archiver.cli import cli

    empty = tmp_path / "not-a-state-folder"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["audit", "verify", str(six_line_log), "--state", str(empty)])
    assert result.exit_code != 0
    assert "no state store in" in result.output
    assert list(empty.iterdir()) == [], "no empty store is created"


def test_a_line_nested_past_the_parsers_depth_is_a_damaged_line_not_a_traceback(
    six_line_log: Path, tmp_path: Path
) -> None:
    lines = six_line_log.read_bytes().splitlines(keepends=True)
    lines[3] = b"[" * 100_000 + b"\n"
    six_line_log.write_bytes(b"".join(lines))
    result = CliRunner().invoke(command, ["verify", str(six_line_log)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{six_line_log}:4: not valid JSON ("), result.stdout
    assert "the line was edited or damaged" in result.stdout


def test_a_digest_nested_past_the_parsers_depth_is_named_not_a_traceback(
    six_line_log: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = tmp_path / "key.pub.pem"
    public.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    digests = Path(f"{six_line_log}.digests")
    digests.mkdir()
    (digests / "00000001.json").write_bytes(b"[" * 100_000)
    result = CliRunner().invoke(
        command, ["verify", str(six_line_log), "--public-key", str(public)], catch_exceptions=False
    )
    assert result.exit_code == 1, result.output
