"""The end-of-run summary printed from a report."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from archiver.cxone import RequestEvent
from archiver.report.monitor import RunMonitor, extend_report
from archiver.report.summary import print_summary
from tests.report.test_monitor import base_report

CID = "3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d"


def printed(width: int, *, quiet: bool = False) -> str:
    monitor = RunMonitor()
    for ms in (10, 20, 30, 40):
        monitor.on_request(RequestEvent("list", "GET", 200, ms / 1000, 1, False, None))
    monitor.on_request(RequestEvent("archive", "POST", 429, 0.005, 1, False, "HTTP 429"))
    monitor.paused(CID)
    monitor.resumed(CID)
    report = extend_report(base_report([(CID, 60, 30, 5, 5), ("[b]odd[/b]", 1, 0, 0, 0)]), monitor)
    out = io.StringIO()
    print_summary(report, quiet=quiet, console=Console(file=out, width=width, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 110, 160])
def test_summary_fits_the_terminal_and_shows_counts_rates_and_latency(width):
    text = printed(width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "95.0%" in text  # success rate: 5 of 100 failed
    assert "1/1" in text  # paused and resumed once
    assert "25.0 ms" in text and "38.5 ms" in text  # p50 and p95 of 10, 20, 30, 40 ms
    assert "[b]odd[/b]" in text  # ids are data, not markup
    assert text.rstrip().endswith("listed 101, archived 61, skipped 30, quarantined 5, failed 5")


def test_full_campaign_ids_and_headers_when_wide():
    text = printed(160)
    assert CID in text and "quarantined" in text and "429s" in text


def test_quiet_prints_only_the_totals_line():
    assert printed(160, quiet=True) == "listed 101, archived 61, skipped 30, quarantined 5, failed 5\n"
