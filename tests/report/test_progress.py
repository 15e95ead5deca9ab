"""Progress displays: the live one on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from archiver.report.progress import LogProgress, TerminalProgress

CID = "3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_progress_reports_counts_rate_and_eta(caplog):
    clock = Clock()
    progress = LogProgress(interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="archiver.progress"):
        progress.campaign_started(CID)
        clock.now += 2
        progress.listed(CID, 100)  # within the interval: no line
        clock.now += 10
        progress.listed(CID, 100)
        progress.planned(CID, 150)
        clock.now += 10
        progress.archived(CID, 50, 0)
        clock.now += 10
        progress.archived(CID, 40, 10)
        progress.campaign_finished(CID, "done", "")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"campaign {CID}: listing",
        f"campaign {CID}: listed 200 (17/s)",
        f"campaign {CID}: listed 200, 150 to archive",
        f"campaign {CID}: archived 50/150, failed 0 (5/s, eta 0:00:20)",
        f"campaign {CID}: archived 90/150, failed 10 (5/s, eta 0:00:10)",
        f"campaign {CID} done: listed 200, archived 90, failed 10 in 32.0 s",
    ]


def test_log_progress_without_a_plan_says_when_archiving_starts(caplog):
    clock = Clock()
    progress = LogProgress(interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="archiver.progress"):
        progress.campaign_started(CID)
        progress.listed(CID, 30)
        clock.now += 11
        progress.archived(CID, 20, 0)
        clock.now += 10
        progress.archived(CID, 20, 0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-2:] == [
        f"campaign {CID}: listed 30, archiving",
        f"campaign {CID}: archived 40, failed 0 (4/s, eta ?)",
    ]


def test_terminal_progress_draws_each_campaign_with_its_counts_and_rate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with TerminalProgress(console) as progress:
        progress.campaign_started(CID)
        progress.listed(CID, 1000)
        progress.planned(CID, 600)
        progress.archived(CID, 200, 0)
        progress.archived(CID, 100, 5)
        progress.paused(CID)
        progress.resumed(CID)
        progress.campaign_finished(CID, "done", "")
    text = out.getvalue()
    assert CID in text
    assert "listed   1,000" in text
    assert "archived     300/600" in text and "failed 5" in text
    assert "/s" in text and "took" in text
    assert "━" in text  # the bar itself


def test_terminal_progress_shows_a_campaign_id_line_break_escaped():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with TerminalProgress(console) as progress:
        progress.campaign_started("c-odd\n")
        progress.listed("c-odd\n", 10)
        progress.campaign_finished("c-odd\n", "done", "")
    text = out.getvalue()
    assert "c-odd\\n" in text
    assert "c-odd\n" not in text
