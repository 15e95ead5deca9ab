"""A tiny client that speaks the CXone contract by hand, for the simulator tests."""

from __future__ import annotations

from typing import Any

import requests

from archiver.simulator import SimConfig, Simulator

APPROVED = {"SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED"}


class Api:
    """Speaks the contract by hand so the tests do not lean on the project's client."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.base = sim.base_url
        self.http = requests.Session()

    def token(self, **form: str) -> requests.Response:
        data = {"grant_type": "client_credentials", "client_id": "demo", "client_secret": "demo-secret"}
        data.update(form)
        return self.http.post(f"{self.base}/oauth/token", data=data, timeout=5)

    def login(self) -> str:
        resp = self.token()
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def listing(self, cid: str, limit: int = 1000, offset: int = 0, **extra: Any) -> requests.Response:
        params = {"status": "completed", "limit": limit, "offset": offset, **extra}
        return self.http.get(f"{self.base}/api/v2/campaigns/{cid}/attempts", params=params,
                             timeout=5)

    def list_all(self, cid: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        while True:
            resp = self.listing(cid, limit=1000, offset=len(records))
            assert resp.status_code == 200, resp.text
            page = resp.json()
            records.extend(page)
            if len(page) < 1000:
                return records

    def archive(self, cid: str, body: Any, key: str | None = None,
                timeout: float = 5) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.http.post(f"{self.base}/api/v2/campaigns/{cid}/contacts/archive", json=body,
                              headers=headers, timeout=timeout)

    def patch(self, cid: str, body: Any) -> requests.Response:
        return self.http.patch(f"{self.base}/api/v2/campaigns/{cid}", json=body, timeout=5)

    def eligible_records(self, cid: str) -> list[dict[str, Any]]:
        return [r for r in self.list_all(cid) if is_eligible(r)]


def is_eligible(rec: dict[str, Any]) -> bool:
    """A strict reading of a listed record, written for the tests."""
    return (
        isinstance(rec.get("id"), str) and bool(rec["id"])
        and isinstance(rec.get("contactId"), str) and bool(rec["contactId"])
        and rec.get("outcomeCode") in APPROVED
        and isinstance(rec.get("disposition"), str)
        and type(rec.get("duration")) is int and rec["duration"] >= 0
        and rec.get("anonymized") is True
        and (rec.get("retentionDays") is None or type(rec.get("retentionDays")) is int)
    )


def item(rec: dict[str, Any], retention: int = 365) -> dict[str, Any]:
    return {
        "contactId": rec["contactId"],
        "attemptId": rec["id"],
        "statusMatrix": {
            "outcomeCode": rec["outcomeCode"],
            "disposition": rec["disposition"],
            "callDurationSeconds": rec["duration"],
            "anonymized": True,
        },
        "retentionPeriodDays": retention,
        "deleteActive": True,
    }


def body(cid: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"campaignId": cid, "items": [item(r) for r in records], "forceColdStorage": True}


SMALL = SimConfig(seed=3, campaigns=2, attempts_per_campaign=400, unanonymized_rate=0.02,
                  malformed_rate=0.03)


def logged_in(sim: Simulator) -> Api:
    client = Api(sim)
    client.login()
    return client

# Same data shape with ids known before the simulator starts, for faults naming a campaign.
NAMED = SimConfig(seed=3, campaign_ids=["camp-a", "camp-b"], attempts_per_campaign=400,
                  unanonymized_rate=0.02, malformed_rate=0.03)
