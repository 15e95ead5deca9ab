"""`archiver run` against an independent strict server written from the contract.

The server (`_cleanroom_server.py`) knows the campaign archive API only from the
reference text: the table "Its HTTP contract is our default backend" and the
tutorial's "HTTP Request/Response Cycle". archiver runs as a subprocess against it
over loopback sockets, without faults and with each fault, and every run is checked
against the server's own ledger: every eligible attempt (approved outcome,
anonymized) archived exactly once and nothing else, the run report's counts adding
up to what the server listed, a rerun archiving nothing more, and the dialing
campaign paused and set ACTIVE again.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.contract._cleanroom_server import APPROVED, Faults, StrictServer, make_dataset

CLIENT_ID = "cleanroom-client"
CLIENT_SECRET = "cleanroom-client-secret"
WEBHOOK_KEY = bytes(range(1, 33))
RUN_TIMEOUT = 45  # seconds one `archiver run` may take before the test fails
HTTP_TIMEOUT = 5

DATASET = make_dataset()
CAMPAIGNS = list(DATASET)
DIALING = CAMPAIGNS[1]
RECORDS = {r["id"]: r for records in DATASET.values() for r in records}
ELIGIBLE = {i for i, r in RECORDS.items() if r["outcomeCode"] in APPROVED and r["anonymized"]}


def expected_retention(record: dict[str, Any]) -> int:
    """The policy below: the record's own value, else the SURVEY_TAKEN rule, else 365."""
    if record.get("retentionDays") is not None:
        return int(record["retentionDays"])
    return 730 if record["outcomeCode"] == "SURVEY_TAKEN" else 365


POLICY = """\
version: 1
name: cleanroom-conformance
description: archiver against an independent strict server written from the contract.
connection:
  base_url: {base}
  timeout_seconds: 5
  max_requests_per_second: 500
  max_in_flight: 4
campaigns:
{campaigns}
source:
  page_size: 100
filters:
  - type: outcome
    approved: [SURVEY_TAKEN, NO_ANSWER, BUSY, DISCONNECTED]
  - type: anonymized
    on_violation: quarantine
transforms:
  - type: retention
    default_days: 365
    use_record_value: true
    rules:
      - outcome: SURVEY_TAKEN
        days: 730
batch:
  max_items: 200
  force_cold_storage: true
  delete_active: true
retry:
  max_attempts: {max_attempts}
  initial_backoff_seconds: 0.05
  max_backoff_seconds: 2
  respect_retry_after: true
sinks:
  - type: webhook
    url: {base}/hooks/archive-events
    secret_env: CLEANROOM_WEBHOOK_SECRET
"""


# -- running archiver ------------------------------------------------------------


@dataclass
class Run:
    exit_code: int
    report: dict[str, Any]
    output: str


@dataclass
class Setup:
    server: StrictServer
    policy: Path
    state: Path
    tmp: Path
    runs: int = 0

    def run(self) -> Run:
        self.runs += 1
        self.server.reset_listed()
        report = self.tmp / f"report-{self.runs}.json"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CXONE_", "ARCHIVER_")) and "PROXY" not in k.upper()
        }
        env |= {
            "CXONE_CLIENT_ID": CLIENT_ID,
            "CXONE_CLIENT_SECRET": CLIENT_SECRET,
            "CLEANROOM_WEBHOOK_SECRET": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
        }
        archiver = Path(sys.executable).with_name("archiver")
        command = [str(archiver), "run", str(self.policy), "--state", str(self.state)]
        done = subprocess.run(
            [*command, "--report", str(report), "--quiet"],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        output = done.stdout + done.stderr
        assert report.exists(), f"no report written (exit {done.returncode}):\n{output}"
        return Run(done.returncode, json.loads(report.read_text()), output)


def start_server(faults: Faults | None, dataset: dict[str, list[dict[str, Any]]] = DATASET
                 ) -> StrictServer:
    """A started strict server on ``dataset``, its second campaign (if any) actively dialing."""
    server = StrictServer(
        dataset,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        dialing=tuple(list(dataset)[1:2]),
        faults=faults,
        webhook_secret=WEBHOOK_KEY,
    )
    server.start()
    return server


def write_policy(path: Path, server: StrictServer, max_attempts: int = 8) -> Path:
    """POLICY at ``path`` for every campaign of ``server``, each paused while it dials."""
    campaigns = "\n".join(
        f"  - id: {c}\n    on_active: pause_and_resume" for c in server.campaigns
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        POLICY.format(base=server.base_url, campaigns=campaigns, max_attempts=max_attempts)
    )
    return path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Any]:
    servers: list[StrictServer] = []

    def make(faults: Faults | None = None, max_attempts: int = 8) -> Setup:
        server = start_server(faults)
        servers.append(server)
        policy = write_policy(tmp_path / "policy" / "cleanroom.yaml", server, max_attempts)
        return Setup(server, policy, tmp_path / "state", tmp_path)

    yield make
    for server in servers:
        server.stop()


# -- what every run must show ----------------------------------------------------


def assert_report_matches_server(run: Run, server: StrictServer, archived_now: set[str]) -> None:
    totals = run.report["totals"]
    states = ("archived", "skipped", "quarantined", "failed", "held", "pending")
    assert totals["listed"] == len(server.listed_ids), (totals, len(server.listed_ids))
    assert sum(totals[s] for s in states) == totals["listed"], totals
    assert run.report["archived_in_this_run"] == len(archived_now)
    by_campaign = {c["id"]: c for c in run.report["campaigns"]}
    assert set(by_campaign) == set(CAMPAIGNS)
    for cid, campaign in by_campaign.items():
        listed_here = {i for i in server.listed_ids if i.startswith(_prefix(cid))}
        assert campaign["listed"] == len(listed_here), (cid, campaign)
        assert sum(campaign[s] for s in states) == campaign["listed"], (cid, campaign)
        archived_here = {i for i in archived_now if i.startswith(_prefix(cid))}
        assert campaign["archived_in_this_run"] == len(archived_here), (cid, campaign)


def _prefix(campaign_id: str) -> str:
    return f"att-{CAMPAIGNS.index(campaign_id)}-"


def assert_archived_exactly_the_eligible(server: StrictServer) -> None:
    twice = {i: n for i, n in server.ledger.items() if n != 1}
    assert not twice, f"archived more than once: {sorted(twice.items())[:10]}"
    ineligible = set(server.ledger) - ELIGIBLE
    assert not ineligible, f"archived but not eligible: {sorted(ineligible)[:10]}"
    missing = ELIGIBLE - set(server.ledger)
    assert not missing, f"eligible, never archived: {len(missing)}, e.g. {sorted(missing)[:10]}"


def assert_bodies_carry_the_records(server: StrictServer) -> None:
    for attempt_id, item in server.archived_items.items():
        record = RECORDS[attempt_id]
        assert item["contactId"] == record["contactId"], attempt_id
        assert item["statusMatrix"] == {
            "outcomeCode": record["outcomeCode"],
            "disposition": record["disposition"],
            "callDurationSeconds": record["duration"],
            "anonymized": record["anonymized"],
        }, attempt_id
        assert item["retentionPeriodDays"] == expected_retention(record), (attempt_id, record)
        assert item["deleteActive"] is True
    # The tutorial's headers: "Authorization: Bearer <token>, Content-Type:
    # application/json, Accept: application/json".
    for call in server.calls("archive"):
        assert call.headers.get("authorization", "").startswith("Bearer "), call.headers
        assert call.headers.get("content-type", "").split(";")[0] == "application/json"
        assert call.headers.get("accept") == "application/json", call.headers
    for batch in server.archive_batches:
        assert batch["forceColdStorage"] is True
        assert 1 <= len(batch["ids"]) <= 200


def assert_dialing_campaign_paused_then_resumed(server: StrictServer) -> None:
    dialing = server.campaigns[DIALING]
    assert dialing.patches == ["PAUSED", "ACTIVE"], dialing.patches
    assert dialing.status == "ACTIVE"
    for cid, campaign in server.campaigns.items():
        if cid != DIALING:
            assert campaign.patches == [], (cid, campaign.patches)
    # Every archive call the server accepted for it came between the two PATCHes.
    log = [e for e in server.log if e.campaign == DIALING and e.status == 200]
    kinds = [(e.endpoint, e.method) for e in log if e.endpoint in ("archive", "patch")]
    assert kinds[0] == ("patch", "PATCH") and kinds[-1] == ("patch", "PATCH"), kinds
    assert server.calls("archive", 409), "the dialing campaign was never refused"


def assert_one_signed_event_per_batch(server: StrictServer) -> None:
    assert not server.bad_webhooks, server.bad_webhooks
    ids = [w["id"] for w in server.webhooks]
    assert len(set(ids)) == len(server.archive_batches), (
        len(set(ids)),
        len(server.archive_batches),
    )


def assert_rerun_archives_nothing(setup: Setup) -> None:
    server = setup.server
    ledger_before = dict(server.ledger)
    patches_before = {cid: list(c.patches) for cid, c in server.campaigns.items()}
    archive_calls_before = len(server.calls("archive"))
    again = setup.run()
    assert again.exit_code == 0, again.output
    assert dict(server.ledger) == ledger_before
    assert len(server.calls("archive")) == archive_calls_before, "a rerun sent archive calls"
    assert {cid: c.patches for cid, c in server.campaigns.items()} == patches_before
    assert_report_matches_server(again, server, archived_now=set())
    assert again.report["totals"]["archived"] == 0  # what it lists now was never archivable


def assert_retry_after_waited(server: StrictServer, seconds: float) -> None:
    """The call a 429 refused comes again no sooner than its Retry-After allows."""
    log = list(server.log)
    for n, refused in enumerate(log):
        if refused.status != 429:
            continue
        again = next(
            e for e in log[n + 1 :] if (e.method, e.path) == (refused.method, refused.path)
        )
        waited = again.at - refused.at
        assert waited >= seconds - 0.05, f"{refused.path} sent again after {waited:.2f} s"


# -- the scenarios ---------------------------------------------------------------

SCENARIOS = {
    "no faults": Faults(),
    "429 with Retry-After on 10% of calls": Faults(rate_limit_share=0.1, retry_after="1"),
    "429 without Retry-After on 10% of calls": Faults(rate_limit_share=0.1),
    "503 on 20% of calls": Faults(unavailable_share=0.2),
    # Pages answered out of order: a listing must be whole before archiving shrinks it.
    "503 on 40% of list calls": Faults(unavailable_share=0.4, only=("list",)),
    # seed 40 puts a fault on the very first call of the kind.
    "429 on the first token call": Faults(rate_limit_share=0.5, only=("token",), seed=40),
    "429 on PATCH calls": Faults(rate_limit_share=0.3, only=("patch",), seed=40),
    # The token stops working long before the hour its answer promised: a 401 mid-run.
    "token dies after 0.3 s, expires_in says 3600": Faults(
        token_lifetime=0.3, advertised_expires_in=3600, latency=0.05
    ),
    # An honest short lifetime: the client has to fetch a new token as it goes.
    "token lives 1 s and says so": Faults(token_lifetime=1.0, latency=0.25),
    # The server keeps no idempotency key: a call resent after its answer was lost
    # would archive its attempts twice.
    "archive answers lost as 502 after taking effect": Faults(lost_answer_share=0.3),
    "archive connections closed after taking effect": Faults(
        lost_answer_share=0.3, lost_answer="drop"
    ),
}


@pytest.mark.parametrize("faults", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_run_archives_every_eligible_attempt_once(setup: Any, faults: Faults) -> None:
    s: Setup = setup(faults)
    first = s.run()
    server = s.server

    assert first.exit_code == 0, first.output
    assert_archived_exactly_the_eligible(server)
    assert_bodies_carry_the_records(server)
    assert_report_matches_server(first, server, archived_now=set(server.ledger))
    assert first.report["totals"]["failed"] == 0
    assert first.report["totals"]["archived"] == len(ELIGIBLE)
    assert_dialing_campaign_paused_then_resumed(server)
    assert_one_signed_event_per_batch(server)
    if faults.rate_limit_share:
        assert [e for e in server.log if e.status == 429], "no call was rate limited"
    if faults.retry_after:
        assert_retry_after_waited(server, float(faults.retry_after))
    if faults.unavailable_share:
        assert [e for e in server.log if e.status == 503], "no call was answered 503"
    if faults.lost_answer_share:
        lost = server.calls("archive", 0 if faults.lost_answer == "drop" else 502)
        assert lost, "no archive answer was lost"
    if faults.token_lifetime and faults.advertised_expires_in:
        assert [e for e in server.log if e.status == 401], "the token never expired mid-run"
    if faults.token_lifetime:
        # Webhook deliveries need no token and may come last: only API calls count.
        api = [e for e in server.log if e.endpoint not in ("token", "webhook")]
        span = api[-1].at - server.calls("token")[0].at
        assert span > faults.token_lifetime, f"API calls took {span:.2f} s: no token expired"
        assert len(server.tokens) > 1, "only one token was ever fetched"

    assert_rerun_archives_nothing(s)


def test_batches_refused_every_time_fail_the_run_and_a_later_run_archives_them(
    setup: Any,
) -> None:
    s: Setup = setup(Faults(unavailable_share=1.0, only=("archive",)), max_attempts=2)
    first = s.run()
    server = s.server

    # PRODUCT.md: exit 1 when some failed; a failed attempt is retried by a later run.
    assert first.exit_code == 1, first.output
    assert not server.ledger
    assert first.report["totals"]["failed"] == len(ELIGIBLE)
    assert first.report["totals"]["archived"] == 0
    assert_report_matches_server(first, server, archived_now=set())
    assert server.campaigns[DIALING].status == "ACTIVE"

    server.faults = Faults()
    second = s.run()
    assert second.exit_code == 0, second.output
    assert_archived_exactly_the_eligible(server)
    assert_bodies_carry_the_records(server)
    assert_report_matches_server(second, server, archived_now=set(server.ledger))
    assert second.report["totals"]["archived"] == len(ELIGIBLE)
    assert server.campaigns[DIALING].status == "ACTIVE"
    assert_rerun_archives_nothing(s)


def test_items_the_answer_reports_failed_are_failed_and_a_later_run_archives_them(
    setup: Any,
) -> None:
    s: Setup = setup(Faults(fail_every=7))
    first = s.run()
    server = s.server
    failed_items = ELIGIBLE - set(server.ledger)

    # The answer counts failures without naming them; the listing still holds them.
    assert failed_items
    assert sum(b["answer"]["failedCount"] for b in server.archive_batches) == len(failed_items)
    assert first.exit_code == 1, first.output
    assert first.report["totals"]["failed"] == len(failed_items)
    assert first.report["totals"]["archived"] == len(server.ledger)
    assert_report_matches_server(first, server, archived_now=set(server.ledger))
    assert all(n == 1 for n in server.ledger.values())
    assert server.campaigns[DIALING].status == "ACTIVE"

    server.faults = Faults()
    before = set(server.ledger)
    second = s.run()
    assert second.exit_code == 0, second.output
    assert_archived_exactly_the_eligible(server)
    assert_bodies_carry_the_records(server)
    assert_report_matches_server(second, server, archived_now=set(server.ledger) - before)
    assert second.report["totals"]["archived"] == len(failed_items)
    assert server.campaigns[DIALING].status == "ACTIVE"
    assert_rerun_archives_nothing(s)


# -- the server is as strict as it says ------------------------------------------


def _call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    form: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:
            raw = answer.read()
            return answer.status, dict(answer.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw else None


def _item(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "contactId": record["contactId"],
        "attemptId": record["id"],
        "statusMatrix": {
            "outcomeCode": record["outcomeCode"],
            "disposition": record["disposition"],
            "callDurationSeconds": record["duration"],
            "anonymized": True,
        },
        "retentionPeriodDays": 365,
        "deleteActive": True,
    }


def test_the_server_refuses_what_the_contract_does_not_allow(setup: Any) -> None:
    s: Setup = setup()
    base = s.server.base_url
    creds = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    assert _call(base, "POST", "/oauth/token", form=creds)[0] == 400
    wrong = creds | {"client_secret": "not-the-secret"}
    assert _call(base, "POST", "/oauth/token", form=wrong)[0] == 401
    status, _, answer = _call(
        base, "POST", "/oauth/token", form=creds | {"client_secret": CLIENT_SECRET}
    )
    assert status == 200 and set(answer) == {"access_token", "expires_in"}
    token = answer["access_token"]

    quiet = CAMPAIGNS[0]
    listing = f"/api/v2/campaigns/{quiet}/attempts?status=completed&limit=5&offset=0"
    assert _call(base, "GET", listing)[0] == 401
    status, _, page = _call(base, "GET", listing, token=token)
    assert status == 200 and len(page) == 5
    assert _call(base, "GET", listing.replace("limit=5", "limit=1001"), token=token)[0] == 400

    records = DATASET[quiet]
    archive = f"/api/v2/campaigns/{quiet}/contacts/archive"
    good = {"campaignId": quiet, "items": [_item(records[0])], "forceColdStorage": True}
    snake = {
        "campaign_id": quiet,
        "items": [
            {
                "contact_id": records[0]["contactId"],
                "attempt_id": records[0]["id"],
                "status_matrix": {
                    "outcome_code": "NO_ANSWER",
                    "disposition": "ARCHIVED",
                    "call_duration_seconds": 0,
                    "anonymized": True,
                },
                "retention_period_days": 365,
                "delete_active": True,
            }
        ],
        "force_cold_storage": True,
    }
    assert _call(base, "POST", archive, snake, token=token)[0] == 400
    extra = good | {"note": "x"}
    assert _call(base, "POST", archive, extra, token=token)[0] == 400
    null_retention = good | {"items": [_item(records[0]) | {"retentionPeriodDays": None}]}
    assert _call(base, "POST", archive, null_retention, token=token)[0] == 400
    missing = good | {
        "items": [{k: v for k, v in _item(records[0]).items() if k != "deleteActive"}]
    }
    assert _call(base, "POST", archive, missing, token=token)[0] == 400
    too_many = good | {"items": [_item(r) for r in records[:201]]}
    assert _call(base, "POST", archive, too_many, token=token)[0] == 400
    assert not s.server.ledger

    status, _, answer = _call(base, "POST", archive, good, token=token)
    assert status == 200
    assert set(answer) == {"archivedCount", "failedCount", "migrationJobId", "status", "timestamp"}
    assert s.server.ledger[records[0]["id"]] == 1

    dialing = f"/api/v2/campaigns/{DIALING}"
    dialing_item = _item(DATASET[DIALING][0])
    body = {"campaignId": DIALING, "items": [dialing_item], "forceColdStorage": True}
    assert _call(base, "POST", dialing + "/contacts/archive", body, token=token)[0] == 409
    assert _call(base, "PATCH", dialing, {"state": "PAUSED"}, token=token)[0] == 400
    assert _call(base, "PATCH", dialing, {"status": "PAUSED"}, token=token)[0] == 200
    assert _call(base, "POST", dialing + "/contacts/archive", body, token=token)[0] == 200

    s.server.faults = Faults(token_lifetime=0.2, advertised_expires_in=3600)
    stale = _call(base, "POST", "/oauth/token", form=creds | {"client_secret": CLIENT_SECRET})
    time.sleep(0.25)
    assert _call(base, "GET", listing, token=stale[2]["access_token"])[0] == 401

    s.server.faults = Faults(rate_limit_share=1.0, retry_after="3")
    status, headers, _ = _call(base, "GET", listing, token=token)
    assert status == 429 and headers.get("Retry-After") == "3"
