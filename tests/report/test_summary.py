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


def summary_of(report: dict, width: int = 160) -> str:
    out = io.StringIO()
    print_summary(report, console=Console(file=out, width=width, color_system=None))
    return out.getvalue()


def interrupted_report() -> dict:
    report = extend_report(base_report([(CID, 40, 10, 0, 950), ("c-2", 0, 0, 0, 3)]), RunMonitor())
    report["interrupted"] = True
    first, second = report["campaigns"]
    first.update(status="failed", reason="run interrupted")
    first["reasons"] = [
        {"state": "failed", "reason": "run interrupted", "count": 900},
        {"state": "failed", "reason": f"campaign {CID}: from POST /x: the run is stopping; the call "
         "was abandoned (a later run finishes it)", "count": 40},
        {"state": "failed", "reason": f"campaign {CID}: HTTP 400 from POST /x: bad item", "count": 10},
        {"state": "skipped", "reason": "outcome X not approved", "count": 10},
    ]
    second.update(status="failed", reason="campaign c-2: HTTP 403 from GET /y: forbidden")
    second["reasons"] = [{"state": "failed", "reason": second["reason"], "count": 3}]
    return report


def test_an_interrupted_run_reads_as_a_stop_to_resume_not_as_failures():
    text = summary_of(interrupted_report())
    lines = text.rstrip().splitlines()
    assert lines[-2:] == [
        "listed 1003, archived 40, skipped 10, quarantined 0, not done 953",
        "interrupted; run again to resume",
    ]
    assert f"  {CID}: interrupted; run again to resume (940 not done yet)" in lines
    assert "run interrupted" not in text and "the run is stopping" not in text
    # Real failures are still named, with their campaign's own status.
    assert f"  {CID}: 10 failed: campaign {CID}: HTTP 400 from POST /x: bad item" in lines
    assert "  c-2: failed: campaign c-2: HTTP 403 from GET /y: forbidden" in lines
    row = next(line for line in lines if line.startswith(f"│ {CID}"))
    assert "interrupted" in row
    assert "nothing left to do" not in text


def test_expected_409s_of_a_dialing_campaign_are_shown_as_such_not_as_errors():
    monitor = RunMonitor(expected_409={CID})
    monitor.on_request(RequestEvent("archive", "POST", 409, 0.01, 1, False, "HTTP 409", CID))
    monitor.on_request(RequestEvent("archive", "POST", 200, 0.01, 2, True, None, CID))
    monitor.on_request(RequestEvent("archive", "POST", 409, 0.01, 1, False, "HTTP 409", "c-fail"))
    report = extend_report(base_report([(CID, 10, 0, 0, 0), ("c-fail", 0, 0, 0, 10)]), monitor)
    by_id = {c["id"]: c for c in report["campaigns"]}
    assert by_id[CID]["api"]["errors"] == 0 and by_id[CID]["api"]["dialing"] == 1
    # Where the policy says on_active: fail, a 409 is an error like any other.
    assert by_id["c-fail"]["api"]["errors"] == 1 and by_id["c-fail"]["api"]["dialing"] == 0
    assert report["api"]["errors"] == 1 and report["api"]["dialing"] == 1
    text = summary_of(report)
    assert f"  {CID}: 1 answer(s) 409 dialing (expected: the policy pauses or skips a dialing" in text
    assert "c-fail: 1 answer(s) 409" not in text


def test_server_text_in_reasons_and_ids_is_shown_escaped():
    report = extend_report(base_report([("c\x1b[2J-1", 0, 1, 0, 0)]), RunMonitor())
    [campaign] = report["campaigns"]
    campaign["reasons"] = [
        {"state": "skipped", "reason": "outcome EVIL\x1b]0;x\x07\nFORGED not approved", "count": 1}
    ]
    text = summary_of(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "c\\x1b[2J-1: 1 skipped: outcome EVIL\\x1b]0;x\\x07\\nFORGED not approved" in text
    assert not any(line.startswith("FORGED") for line in text.splitlines())


def test_a_run_whose_campaigns_failed_before_listing_says_so_not_nothing_left_to_do():
    report = extend_report(base_report([(CID, 0, 0, 0, 0), ("c-2", 0, 0, 0, 0)]), RunMonitor())
    first, second = report["campaigns"]
    first.update(status="failed", reason=f"campaign {CID}: HTTP 404 from GET /x: no such campaign")
    second.update(status="busy", reason="held by another run")
    lines = summary_of(report).rstrip().splitlines()
    assert lines[-1] == "nothing archived: 2 campaigns: 1 failed, 1 busy (see above)"
    assert f"  {CID}: failed: campaign {CID}: HTTP 404 from GET /x: no such campaign" in lines
    second.update(status="done", reason=None)
    assert summary_of(report).rstrip().splitlines()[-1] == "nothing archived: 1 campaign failed (see above)"
    first.update(status="done", reason=None)
    assert summary_of(report).rstrip().splitlines()[-1] == (
        "nothing left to do: no attempt needed an archive call"
    )


def test_a_rerun_that_reconciled_says_so_apart_from_what_it_listed_and_archived():
    # An earlier run died with a batch of 40 sent: the rerun found them gone from the
    # listing. Its own calls archived the 60 it listed.
    report = extend_report(base_report([(CID, 60, 0, 0, 0), ("c-2", 0, 0, 0, 0)]), RunMonitor())
    report["campaigns"][0]["reconciled"] = report["totals"]["reconciled"] = 40
    report["campaigns"][1]["reconciled"] = 0
    lines = summary_of(report).rstrip().splitlines()
    assert lines[-1] == "listed 60, archived 60, skipped 0, quarantined 0, failed 0; reconciled 40"
    assert (f"  {CID}: 40 reconciled: archived by an earlier run's batch, its answer never "
            "recorded (not listed by this run)") in lines
    assert not any(line.startswith("  c-2:") for line in lines)
