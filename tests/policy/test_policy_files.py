"""Reading policy files: control characters are diagnostics, and `validate` and `test`
find the same policies in a folder tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import EXIT_CONFIG
from archiver.policy import check_file
from archiver.policy.files import policy_files, policy_test_files
from archiver.review.testrun import find_test_files
from tests.support import REPO, run_cli

from ._texts import VALID, line_of
from .conftest import Writer


def _validate(*paths: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", *map(str, paths)])
    return result.exit_code, result.output.splitlines()


# -- control characters -----------------------------------------------------------


@pytest.mark.parametrize(("char", "shown"), [("\x00", "U+0000 (NUL)"), ("\x1b", "U+001B (ESC)"),
                                             ("\x07", "U+0007"), ("\x7f", "U+007F (DEL)")])
def test_a_control_character_is_a_diagnostic_at_its_line(
    write: Writer, char: str, shown: str
) -> None:
    text = VALID.replace("name: broken-example", f"name: broken{char}-example")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert lines == [
        f"{path}:{line_of(text, 'name:')}:13: P008 character {shown} is not allowed in a "
        "policy; remove it (a policy is plain text)",
        "1 error in 1 of 1 policy",
    ]


def test_every_line_with_control_characters_is_named_once(write: Writer) -> None:
    text = VALID.replace("version: 1", "version: 1\x00\x00").replace("  max_items", "\x00 max_items")
    path = write(text)

    found = check_file(path)

    assert [(d.line, d.col, d.code) for d in found] == [
        (1, 11, "P008"), (line_of(text, "max_items"), 1, "P008")]


def test_lines_are_counted_as_yaml_counts_them(write: Writer) -> None:
    path = write(VALID.replace("\n", "\r\n").replace("name: broken", "name: br\x00oken"))

    (found,) = check_file(path)

    assert (found.line, found.col, found.code) == (2, 9, "P008")


def test_run_with_a_nul_byte_exits_78_without_a_traceback(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_bytes(VALID.replace("batch:", "bat\x00ch:").encode())

    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], {"PATH": ""})

    assert result.returncode == EXIT_CONFIG, result.stderr
    assert result.stderr.startswith(f"{policy}:{line_of(VALID, 'batch:')}:4: P008 ")
    assert "Traceback" not in result.stderr


# -- finding policies -----------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A policy repository: a policy at the top and one two folders down, both with tests;
    copies in .git and .archiver, which are not policies of the repository."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    nested = tmp_path / "policies" / "team" / "emea"
    nested.mkdir(parents=True)
    shutil.copytree(REPO / "policies" / "templates", nested / "templates")
    for name in ("survey-retention.yaml", "survey-retention.test.yaml"):
        shutil.copy(REPO / "policies" / name, nested / name.replace("survey", "emea"))
    for hidden in (".git", ".archiver"):
        (tmp_path / "policies" / hidden).mkdir()
        (tmp_path / "policies" / hidden / "broken.yaml").write_text("version: 2\n")
        (tmp_path / "policies" / hidden / "broken.test.yaml").write_text("version: 2\n")
    (tmp_path / "policies" / ".hidden.yaml").write_text("version: 2\n")
    return tmp_path / "policies"


def test_validate_recurses_into_sub_folders(tree: Path) -> None:
    assert _validate(tree) == (0, ["3 policies valid"])

    nested = tree / "team" / "emea" / "emea-retention.yaml"
    nested.write_text(nested.read_text().replace("max_items: 200", "max_items: 500"))
    code, lines = _validate(tree)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{nested}:")
    assert " S005 " in lines[0]
    assert lines[1] == "1 error in 1 of 3 policies"


def test_validate_and_test_find_the_same_policies(tree: Path) -> None:
    policies = policy_files(tree)
    tests, errors = find_test_files([tree])

    assert errors == []
    assert tests == policy_test_files(tree)
    assert [t.name.replace(".test", "") for t in tests] == [p.name for p in policies]
    assert not any(part.startswith(".") for p in [*policies, *tests]
                   for part in p.relative_to(tree).parts)
    result = CliRunner().invoke(cli, ["test", str(tree)])
    assert result.exit_code == 0, result.output
    assert "team/emea/emea-retention.test.yaml" in result.output


def test_a_folder_with_policies_only_in_hidden_folders_has_none(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "p.yaml").write_text(VALID)

    code, lines = _validate(tmp_path)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{tmp_path}:1:1: P007 ")


# -- symlinks found in a folder -----------------------------------------------------------

SECRET = "gho_NOT_FOR_THE_CI_LOG"


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """A repository whose policy folder holds symlinks a policy change could add: to a
    token file outside, to the work tree's .env, into .git, to a hidden file; and one
    that is a policy of the repository under a second name."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    shutil.copytree(REPO / "policies", repo / "policies",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    (tmp_path / "hosts.yml").write_text(f"version: {SECRET}\n")
    (repo / ".env").write_text(f"CXONE_CLIENT_SECRET={SECRET}\n")
    (repo / ".git" / "config.yaml").write_text(f"version: {SECRET}\n")
    (repo / "policies" / ".local.yaml").write_text(f"version: {SECRET}\n")
    links = {"outside.yaml": tmp_path / "hosts.yml", "env.yaml": repo / ".env",
             "git.yaml": repo / ".git" / "config.yaml",
             "hidden.yaml": repo / "policies" / ".local.yaml",
             "outside.test.yaml": tmp_path / "hosts.yml"}
    for name, target in links.items():
        (repo / "policies" / name).symlink_to(target)
    (repo / "policies" / "current.yaml").symlink_to("survey-retention.yaml")
    return repo / "policies"


def test_validate_reads_no_symlinked_file_that_is_not_a_policy_of_the_repository(
    linked: Path,
) -> None:
    # `archiver validate policies/` runs in CI on a proposed change: a link to a token
    # file, to .env or into .git had its content quoted in the schema errors.
    code, lines = _validate(linked)

    assert code == EXIT_CONFIG
    assert not any(SECRET in line for line in lines), lines
    refused = {line.split(":", 1)[0]: line for line in lines if " P009 " in line}
    assert sorted(Path(p).name for p in refused) == [
        "env.yaml", "git.yaml", "hidden.yaml", "outside.yaml"]
    assert all(line.split(": ", 1)[0].endswith(":1:1") for line in refused.values())
    assert f"{linked}/current.yaml" not in "\n".join(lines)  # a link to a policy is read
    assert lines[-1].startswith("4 errors in 4 of ")


def test_test_and_run_read_no_symlinked_file_that_is_not_a_policy_of_the_repository(
    linked: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["test", str(linked)])
    assert result.exit_code == 1
    assert SECRET not in result.output
    assert f"{linked}/outside.test.yaml:1:1: P009 " in result.output, result.output

    ran = run_cli(["run", str(linked), "--state", str(tmp_path / "s")], {"PATH": ""})
    assert ran.returncode == EXIT_CONFIG, ran.stderr
    assert SECRET not in ran.stderr and " P009 " in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr


# -- hold files kept beside the policies -------------------------------------------------


@pytest.fixture
def with_holds(tmp_path: Path) -> Path:
    """The demo with a hold file where the README keeps one: holds/CASE.yaml beside it."""
    folder = tmp_path / "examples"
    shutil.copytree(REPO / "examples", folder,
                    ignore=shutil.ignore_patterns(".archiver", "archive", "audit", "plugins",
                                                  "cxone-export.yaml"))
    (folder / "holds").mkdir()
    (folder / "holds" / "LIT-1.yaml").write_text(
        "case: LIT-1\nplaced_by: legal@example.com\nattempts: [att-1]\n")
    policy = folder / "demo.yaml"
    policy.write_text(policy.read_text() + "\nholds: [holds/LIT-1.yaml]\n")
    return folder


def test_a_folder_whose_policies_list_hold_files_beside_them_validates(
    with_holds: Path,
) -> None:
    # The hold file is checked as a hold file (V023) by the policy that lists it; read as
    # a policy, it failed the folder's validation (and so a CI step) with S001/S002.
    assert _validate(with_holds) == (0, ["1 policy valid"])

    # A broken one fails its policy, at the `holds:` entry (and, the policy not loading,
    # is read as a policy of the folder too).
    (with_holds / "holds" / "LIT-1.yaml").write_text("case: LIT-1\nattempts: [att-1]\n")
    code, lines = _validate(with_holds)
    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{with_holds}/demo.yaml:") and " V023 " in lines[0], lines


def test_run_of_such_a_folder_runs_the_policy_not_the_hold_file(
    with_holds: Path, tmp_path: Path
) -> None:
    # Refused before any request as an invalid policy (S002) before; now the hold file is
    # left to its policy, and the run goes as far as the command line lets it.
    ran = run_cli(["run", str(with_holds), "--state", str(tmp_path / "s"), "--campaign", "nope"],
                  {"PATH": ""})
    assert ran.returncode == 2, ran.stderr
    assert "--campaign nope: no policy given lists it" in ran.stderr, ran.stderr
