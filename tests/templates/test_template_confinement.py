"""Templates read nothing but templates: ``*.j2`` files inside the policy's repository.

The leaks these tests close: a template that includes `.env` put the client secret in
the audit log, the state database and `plan`'s output; `validate` quoted a non-template
file (`/etc/passwd` through a symlink, `/proc/self/environ` named as the template) in
its error message.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from archiver.errors import TemplateError
from archiver.templates import DEFAULT_AUDIT, compile_template, load_template, sample_events
from tests.support import CLIENT_SECRET, policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "dddddddd-0000-4000-8000-0000000000e1"
MARKER = "leak-marker-Wq58"  # in the environment of every archiver these tests start
# What the included file is turned into: a JSON string, so the payload stays valid JSON.
SMUGGLE = '{"event": {{ event | tojson }}, "x": {% filter tojson %}{% include "NAME" %}{% endfilter %}}'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with a `.env` holding the client secret beside the policy."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / ".env").write_text(f"CXONE_CLIENT_SECRET={CLIENT_SECRET}\n")
    return root


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    out.update(LEAK_MARKER=MARKER, DW_WEBHOOK_SECRET="unused-secret-1234567890", **extra)
    return out


def audit_policy(repo: Path, template: str, name: str = "policy.yaml") -> Path:
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl", "template": template}]
    return write_policy(repo / name, doc)


def value_spot(policy: Path, key: str) -> tuple[int, int]:
    for number, line in enumerate(policy.read_text().splitlines(), start=1):
        if line.strip().startswith(f"{key}:"):
            return number, line.index(":") + 3
    raise AssertionError(f"{key} not in {policy}")


def leaked(text: str) -> bool:
    return CLIENT_SECRET in text or MARKER in text or "root:x:0:0" in text or "\\x00" in text


def everything_written(repo: Path) -> str:
    """Every file under the repository but `.env` itself, as text."""
    return "".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in repo.rglob("*") if p.is_file() and p.name != ".env"
    )


@pytest.mark.parametrize(
    ("included", "setup", "reason"),
    [
        (".env", None, "only `*.j2` templates are loaded"),
        ("secret.j2", ("secret.j2", ".env"), "it is a symlink to a file that is not a `*.j2`"),
        ("passwd.j2", ("passwd.j2", "/etc/passwd"), "it leads outside"),
        ("/etc/passwd", None, "only `*.j2` templates are loaded"),
    ],
)
def test_validate_refuses_to_include_what_is_not_a_template(
    repo: Path, included: str, setup: tuple[str, str] | None, reason: str
) -> None:
    if setup is not None:
        link, target = setup
        (repo / link).symlink_to(target if target.startswith("/") else repo / target)
    (repo / "audit.json.j2").write_text(SMUGGLE.replace("NAME", included))
    policy = audit_policy(repo, "audit.json.j2")

    result = run_cli(["validate", str(policy)], env(), timeout=60)

    assert result.returncode == 78, result.stdout + result.stderr
    assert "T003" in result.stdout
    assert f"cannot include {included!r}: {reason}" in result.stdout
    assert not leaked(result.stdout + result.stderr)


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("/proc/self/environ", "only `*.j2` templates are loaded"),
        (".env", "only `*.j2` templates are loaded"),
        ("environ.j2", "it leads outside"),  # a symlink to /proc/self/environ
        ("dotenv.j2", "it is a symlink to a file that is not a `*.j2` template"),
        ("../outside.json.j2", "it leads outside"),
    ],
)
def test_a_template_key_must_name_a_j2_file_inside_the_repository(
    repo: Path, written: str, reason: str
) -> None:
    (repo / "environ.j2").symlink_to("/proc/self/environ")
    (repo / "dotenv.j2").symlink_to(repo / ".env")
    (repo.parent / "outside.json.j2").write_text('{"event": {{ event | tojson }}}')
    policy = audit_policy(repo, written)
    line, col = value_spot(policy, "template")

    result = run_cli(["validate", str(policy)], env(), timeout=60)

    assert result.returncode == 78, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{policy}:{line}:{col}: T004 template `{written}` is not allowed: "
                            f"{reason}"), first
    assert "inside the policy's repository" in first
    assert not leaked(result.stdout + result.stderr)


def test_plan_and_run_refuse_a_template_that_includes_env_and_leak_nothing(
    repo: Path, start_sim
) -> None:
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    (repo / "audit.json.j2").write_text(SMUGGLE.replace("NAME", ".env"))
    policy = audit_policy(repo, "audit.json.j2")
    environment = {**sim_env(sim), "LEAK_MARKER": MARKER}

    planned = run_cli(["plan", str(policy)], environment, timeout=60, cwd=repo)
    ran = run_cli(["run", str(policy), "--state", str(repo / "state")], environment,
                  timeout=60, cwd=repo)

    for result in (planned, ran):
        assert result.returncode == 78, result.stdout + result.stderr
        assert "cannot include '.env': only `*.j2` templates are loaded" in result.stderr
        assert not leaked(result.stdout + result.stderr)
    assert [r for r in sim.requests() if not r["path"].startswith("/_sim/")] == []
    assert not (repo / "audit").exists()
    assert CLIENT_SECRET not in everything_written(repo)


def test_a_run_includes_templates_from_anywhere_in_the_repository(
    repo: Path, start_sim
) -> None:
    """Include names are relative to the policy's template; `..` may leave its folder, not
    the repository. The run reads them the way validate does."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    (repo / "shared").mkdir()
    (repo / "shared" / "fields.j2").write_text('"shared": {{ run_id | tojson }}')
    (repo / "policies" / "templates").mkdir(parents=True)
    (repo / "policies" / "templates" / "audit.json.j2").write_text(
        '{"event": {{ event | tojson }}, {% include "../../shared/fields.j2" %}}'
    )
    policy = audit_policy(repo / "policies", "templates/audit.json.j2")

    checked = run_cli(["validate", str(policy)], sim_env(sim), timeout=60)
    ran = run_cli(["run", str(policy), "--state", str(repo / "state")], sim_env(sim),
                  timeout=120, cwd=repo)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(x) for x in (repo / "policies" / "audit" / "audit.jsonl").read_text()
             .splitlines()]
    assert [x["event"] for x in (lines[0], lines[-1])] == ["run_started", "run_finished"]
    assert all(x["shared"].startswith("r") for x in lines)


def test_the_loader_refuses_what_is_not_a_template_under_a_root(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"SECRET={CLIENT_SECRET}\n")
    (tmp_path / "devnull.j2").symlink_to("/dev/null")
    os.mkfifo(tmp_path / "pipe.j2")  # opening it for reading must not wait for a writer
    cases = {
        ".env": "only `*.j2`", "devnull.j2": "leads outside",
        "pipe.j2": "it is a named pipe (FIFO), not a regular file",
        # open() refuses a socket outright (ENXIO); it is still named for what it is.
        "socket.j2": "it is a socket, not a regular file",
    }
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "socket.j2"))
        for n, (name, reason) in enumerate(cases.items()):
            path = tmp_path / f"t{n}.json.j2"
            path.write_text('{"x": {% filter tojson %}{% include "' + name + '" %}{% endfilter %}}')
            with pytest.raises(TemplateError) as info:
                compile_template(path, root=tmp_path).render_json({})
            assert reason in str(info.value)
            assert CLIENT_SECRET not in str(info.value)


def test_a_template_path_is_checked_before_it_is_read(tmp_path: Path) -> None:
    (tmp_path / "policy").mkdir()
    with pytest.raises(TemplateError, match=r"only `\*\.j2` templates are loaded"):
        load_template(Path("/proc/self/environ"), DEFAULT_AUDIT, root=tmp_path / "policy")
    (tmp_path / "policy" / "t.json.j2").symlink_to(tmp_path / "elsewhere.json.j2")
    (tmp_path / "elsewhere.json.j2").write_text("{}")
    with pytest.raises(TemplateError, match="leads outside"):
        load_template(tmp_path / "policy" / "t.json.j2", DEFAULT_AUDIT, root=tmp_path / "policy")


def test_the_packaged_defaults_stay_usable_under_any_root(tmp_path: Path) -> None:
    template = load_template(None, DEFAULT_AUDIT, root=tmp_path)
    for event in sample_events():
        assert template.render_json(event)["event"] == event["event"]


def test_error_messages_quote_only_a_short_excerpt(tmp_path: Path) -> None:
    (tmp_path / "long.j2").write_text("z" * 5000)
    path = tmp_path / "t.json.j2"
    path.write_text('{"x": {% include "long.j2" %}}')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({})
    assert "not valid JSON" in str(info.value)
    assert "z" * 41 not in str(info.value)
    other = tmp_path / "u.json.j2"
    other.write_text('{"x": {{ run.' + "a" * 5000 + " }}}")
    with pytest.raises(TemplateError) as info:
        compile_template(other).render_json({"run": {}})
    assert "has no attribute 'aaaa" in str(info.value)
    assert len(str(info.value)) <= len(f"{other}:1: ") + 300
