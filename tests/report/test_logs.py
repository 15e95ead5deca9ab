"""Log lines carry the run id and the campaign, as text or JSON."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from archiver.report.logs import configure_logging, level_from, set_campaign


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
