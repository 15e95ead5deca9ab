"""The loader's public API: load_policy, load_policy_text, check_file, check_paths."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import pytest

from archiver.errors import PolicyError
from archiver.policy import check_file, check_paths, load_policy, load_policy_text
from archiver.policy.model import Policy
from archiver.stages.filters.outcome import OutcomeFilter
from archiver.stages.sinks.audit_log import AuditLogSink

from ._texts import VALID, line_of
from .conftest import Writer


def test_load_policy_builds_the_typed_policy_with_path_and_hash(write: Writer) -> None:
    path = write()

    policy = load_policy(str(path))

    assert isinstance(policy, Policy)
    assert policy.path == path.resolve()
    assert policy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [c.on_active for c in policy.campaigns] == ["pause_and_resume", "fail"]
    options = policy.filters[0].options
    assert isinstance(options, OutcomeFilter)
    assert options.approved == ("SURVEY_TAKEN", "NO_ANSWER")
    sink = policy.sinks[1].options
    assert isinstance(sink, AuditLogSink)
    assert policy.resolve(sink.path) == path.parent.resolve() / "audit" / "log.jsonl"


def test_load_policy_raises_with_every_diagnostic(write: Writer) -> None:
    text = VALID.replace("max_items: 200", "max_items: 201").replace("name: broken", "nam: broken")
    path = write(text)

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    found = [(d.line, d.code) for d in caught.value.diagnostics]
    assert found == [(2, "S001"), (line_of(text, "max_items"), "S005")]
    assert all(d.file == str(path) for d in caught.value.diagnostics)


def test_load_policy_reads_stdin_and_resolves_paths_from_the_working_folder(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write()
    monkeypatch.chdir(path.parent)
    data = path.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    policy = load_policy("-")

    assert policy.sha256 == hashlib.sha256(data).hexdigest()
    assert policy.resolve("templates/audit.json.j2") == path.parent / "templates/audit.json.j2"


def test_stdin_diagnostics_are_named_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"version: 1\n")))

    with pytest.raises(PolicyError) as caught:
        load_policy("-")

    assert {d.file for d in caught.value.diagnostics} == {"<stdin>"}


def test_load_policy_text_resolves_templates_against_base_dir(write: Writer) -> None:
    folder = write().parent

    policy = load_policy_text(VALID, name="inline.yaml", base_dir=folder)
    assert policy.resolve("templates/audit.json.j2") == folder.resolve() / "templates/audit.json.j2"

    with pytest.raises(PolicyError) as caught:
        load_policy_text(VALID, name="inline.yaml", base_dir=folder / "elsewhere")
    (missing,) = caught.value.diagnostics
    assert (missing.file, missing.code) == ("inline.yaml", "T001")


def test_check_file_never_raises_for_bad_policies(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\nname: \xff\xfe\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")

    assert [(d.line, d.code) for d in check_file(binary)] == [(2, "P002")]
    assert [d.code for d in check_file(empty)] == ["S003"]
    assert [d.code for d in check_file(listed)] == ["S003"]
    (folder,) = check_file(tmp_path)
    assert (folder.file, folder.line, folder.code) == (str(tmp_path), 1, "P002")


def test_check_paths_expands_folders_and_keeps_files(write: Writer) -> None:
    good = write(name="good.yaml")
    bad = write("version: 1\n", name="bad.yml")
    (good.parent / "good.test.yaml").write_text("not: a policy\n")

    results = check_paths([good.parent, good])

    assert set(results) == {good, bad}
    assert results[good] == []
    assert {d.code for d in results[bad]} == {"S002"}


def test_alias_bomb_is_refused_without_expanding_it(write: Writer) -> None:
    levels = ["a: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 30):  # 10**30 strings if anything expanded it
        levels.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]")
    path = write("version: 1\nname: bomb\ncampaigns: [{id: c1}]\n" + "\n".join(levels) + "\n")

    found = check_file(path)

    assert found[0].code == "P004"
    assert found[0].line == 5
    assert {d.code for d in found} == {"P004"}


def test_deep_nesting_is_refused_instead_of_exhausting_the_stack(write: Writer) -> None:
    path = write("version: 1\nname: deep\ncampaigns: " + "[" * 20_000 + "]" * 20_000 + "\n")

    (found,) = check_file(path)

    assert (found.line, found.code) == (3, "P003")
    assert "nested more than 64 levels" in found.message
