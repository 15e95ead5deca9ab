"""Log lines carry the run id and the campaign, as text or JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import threading

import pytest

from archiver.report.logs import configure_logging, level_from, set_campaign
from tests.support import policy_dict, run_cli, write_policy


@pytest.fixture(autouse=True)
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_carry_run_id_and_the_campaign_of_the_thread():
    stream = io.StringIO()
    context = configure_logging(fmt="json", level=logging.INFO, stream=stream)
    context.run_id = "r1"
    log = logging.getLogger("archiver.test")

    def campaign_thread():
        set_campaign("c-7")
        log.info("page %d listed", 3)

    thread = threading.Thread(target=campaign_thread, name="campaign_0")
    thread.start()
    thread.join()
    # A thread serving every campaign: the engine's "campaign %s" convention names it.
    log.info("campaign %s: batch %s done", "c-8", "b1")
    log.info("run starting")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [(x["run_id"], x["campaign"], x["message"]) for x in lines] == [
        ("r1", "c-7", "page 3 listed"),
        ("r1", "c-8", "campaign c-8: batch b1 done"),
        ("r1", None, "run starting"),
    ]
    assert lines[0]["thread"] == "campaign_0"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "archiver.test"
    assert lines[0]["time"].endswith("Z")


def test_text_lines_carry_run_id_and_campaign():
    stream = io.StringIO()
    context = configure_logging(fmt="text", level=logging.DEBUG, stream=stream)
    context.run_id = "r2"
    logging.getLogger("archiver.x").debug("campaign %s paused", "c-1")
    line = stream.getvalue().strip()
    assert " DEBUG " in line and "run=r2 campaign=c-1 archiver.x: campaign c-1 paused" in line


def test_exceptions_are_kept_in_json():
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)
    try:
        raise KeyError("k")
    except KeyError:
        logging.getLogger("archiver.x").exception("failed")
    entry = json.loads(stream.getvalue())
    assert "KeyError: 'k'" in entry["exception"]


@pytest.mark.parametrize(
    ("level", "verbose", "quiet", "expected"),
    [
        (None, 0, False, logging.INFO),
        (None, 0, True, logging.WARNING),
        (None, 1, False, logging.DEBUG),
        ("error", 1, False, logging.ERROR),
        ("DEBUG", 0, True, logging.DEBUG),
    ],
)
def test_level_from_options(level, verbose, quiet, expected):
    assert level_from(level, verbose, quiet) == expected


def test_configure_replaces_earlier_handlers_and_sets_the_level():
    configure_logging(stream=io.StringIO())
    configure_logging(stream=io.StringIO(), level=logging.WARNING)
    root = logging.getLogger()
    assert len(root.handlers) == 1 and root.level == logging.WARNING


def test_a_campaign_field_with_a_line_break_or_escape_stays_on_its_line():
    stream = io.StringIO()
    context = configure_logging(fmt="text", level=logging.INFO, stream=stream)
    context.run_id = "r3"
    log = logging.getLogger("archiver.x")

    def campaign_thread():
        set_campaign("c-1\n2026-01-01T00:00:00.000Z INFO    run=r3 campaign=- forged\x1b[2J")
        log.info("page listed")

    thread = threading.Thread(target=campaign_thread)
    thread.start()
    thread.join()
    log.info("campaign %s: done", "c-2\r\nforged")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "campaign=c-1\\n2026-01-01T00:00:00.000Z INFO" in lines[0]
    assert lines[0].endswith("forged\\x1b[2J archiver.x: page listed")
    assert "campaign=c-2\\r\\nforged archiver.x: campaign c-2\\r\\nforged: done" in lines[1]


def test_a_run_whose_campaign_id_ends_in_a_line_break_is_refused_before_it_logs(tmp_path):
    """A campaign id or policy name ending in a newline would split every log line it
    is in: the schema refuses it (its patterns end the text at `$`, as JSON Schema
    reads them), so such a run never starts; the log's escaping above is for what a
    server sends."""
    policy = write_policy(tmp_path / "policy.yaml",
                          policy_dict(["c-odd\n"], name="odd-policy\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"),
                      "--log-format", "text"], env)
    assert result.returncode == 78, result.stderr
    refused = [line for line in result.stderr.splitlines() if " S006 " in line]
    assert len(refused) == 2, result.stderr
    assert "`odd-policy\\n` has the wrong form" in refused[0]
    assert "`c-odd\\n` has the wrong form" in refused[1]
    assert not (tmp_path / "state").exists()
