"""Where the state store is: --state DIR or URL, ARCHIVER_STATE_URL, the folder beside the
policy; a URL is shown without its password."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import ConfigError
from archiver.report.redact import forget_secrets, redact
from archiver.state import location
from archiver.state.location import PostgresUrl
from archiver.state.store import Store
from archiver.target import Target


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://archiver:s3cret-pw@db.internal:5432/archiver",
         "postgresql://archiver@db.internal:5432/archiver"),
        ("postgres://u:p%40ss%3Aword@[::1]/db?sslmode=require&password=other-s3cret",
         "postgres://u@[::1]/db?sslmode=require"),
        ("postgresql:///archiver?host=/var/run/postgresql", "postgresql:///archiver?host=/var/run/postgresql"),
    ],
)
def test_a_url_is_shown_without_its_password(url, shown):
    parsed = location.parse(url)
    assert isinstance(parsed, PostgresUrl)
    assert str(parsed) == shown
    assert "s3cret" not in repr(parsed) and "p%40ss" not in repr(parsed)


def test_the_password_is_masked_in_logs_as_written_and_as_decoded():
    url = PostgresUrl("postgresql://u:p%40ssw0rd-long@h/db?password=second-secret")
    assert set(url.secrets) == {"p%40ssw0rd-long", "p@ssw0rd-long", "second-secret"}
    from archiver.commands._state import STATE

    try:
        STATE.convert(url.dsn, None, None)
        assert redact("connecting with p@ssw0rd-long") == "connecting with ***"
    finally:
        forget_secrets()


def test_a_folder_is_a_folder_and_an_unknown_scheme_is_refused():
    assert location.parse("state/here") == Path("state/here")
    with pytest.raises(ConfigError, match=r"mysql://\.\.\.: not a state store"):
        location.parse("mysql://u@h/db")


def test_the_environment_names_the_store_before_the_folder_beside_the_policy(monkeypatch, tmp_path):
    policy = tmp_path / "p.yaml"
    monkeypatch.delenv(location.STATE_URL_ENV, raising=False)
    assert location.default_for(policy) == tmp_path / ".archiver"
    monkeypatch.setenv(location.STATE_URL_ENV, "postgresql://u@h/db")
    assert location.default_for(policy) == PostgresUrl("postgresql://u@h/db")
    monkeypatch.setenv(location.STATE_URL_ENV, str(tmp_path / "folder"))
    with pytest.raises(ConfigError, match="ARCHIVER_STATE_URL must be a postgresql:// URL"):
        location.default_for(policy)


def test_runs_reads_a_postgresql_store_from_the_option_or_the_environment(postgres_url):
    store = Store(PostgresUrl(postgres_url))
    store.runs.start("r-pg-1", "pg-policy", "0" * 64, Target("campaign-archive", "embedded"))
    store.runs.finish("r-pg-1", "completed", 0, {"totals": {"listed": 3}})
    store.close()
    runner = CliRunner()
    by_option = runner.invoke(cli, ["runs", "--state", postgres_url, "--format", "json"])
    assert by_option.exit_code == 0, by_option.output
    assert '"id": "r-pg-1"' in by_option.output
    by_env = runner.invoke(cli, ["runs", "show", "r-pg"], env={location.STATE_URL_ENV: postgres_url})
    assert by_env.exit_code == 0, by_env.output
    assert '"listed": 3' in by_env.output


def test_a_database_no_run_has_used_is_no_store_and_a_wrong_password_is_not_shown(postgres_url):
    runner = CliRunner()
    empty = runner.invoke(cli, ["runs", "--state", postgres_url])
    assert empty.exit_code == 1
    assert "no state store in postgresql://postgres@" in empty.output
    wrong = postgres_url.replace("postgres:", "postgres:Not-The-Passw0rd", 1)
    refused = runner.invoke(cli, ["runs", "--state", wrong])
    assert refused.exit_code == 78, refused.output
    assert "password authentication failed" in refused.output
    assert "Not-The-Passw0rd" not in refused.output
    forget_secrets()


def test_an_unknown_scheme_is_a_usage_error_on_the_command_line():
    result = CliRunner().invoke(cli, ["runs", "--state", "mysql://u@h/db"])
    assert result.exit_code == 2
    assert "not a state store this archiver knows" in result.output
