"""The tutorial's archiver (its "Complete Working Example"), re-implemented as written.

This is the baseline ``throughput.py`` measures ``archiver run`` against, so its
costs are kept on purpose: one request at a time; a new TCP connection per
request (plain ``requests.get``/``requests.post``, no Session); every listed
attempt of a campaign held in memory before the first batch is posted; the
archive retry loop as written (429 only, sleeps of 1.5 s * 2**n, three tries, no
timeouts); a fire-and-forget warehouse callback and an appended audit line per
batch.

Changed only so that it can run at all: the archive body carries the API's
camelCase keys (the tutorial's ``batch.dict()`` sends snake_case and every call
is answered 400), the base URL and credentials come from the environment
(``CXONE_BASE_URL``, ``CXONE_CLIENT_ID``, ``CXONE_CLIENT_SECRET``), campaigns run
one after another with an exception ending only its own campaign, and it counts
what it fetched and prints a JSON summary for the benchmark to read.

    python benchmarks/_tutorial.py CAMPAIGN_ID... --callback-url URL --audit-log FILE
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

logger = logging.getLogger("tutorial")

APPROVED_OUTCOMES = frozenset({"SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED"})


class CXoneOAuth:
    def __init__(self, client_id: str, client_secret: str, base_url: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        # The tutorial derives https://api.{region}.nicecxone.com; here it is the simulator.
        self.base_url = base_url.rstrip("/")
        self.token_url = f"{self.base_url}/oauth/token"
        self._access_token: str | None = None
        self._token_expiry: datetime | None = None

    def get_token(self) -> str:
        if self._access_token and self._token_expiry and datetime.utcnow() < self._token_expiry:
            return self._access_token
        payload = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        response = requests.post(self.token_url, data=payload, headers=headers)
        if response.status_code == 401:
            raise RuntimeError("OAuth authentication failed: invalid client credentials")
        response.raise_for_status()
        data = response.json()
        self._access_token = str(data["access_token"])
        self._token_expiry = datetime.utcnow() + timedelta(seconds=data["expires_in"] - 60)
        return self._access_token


class _CamelCase(BaseModel):
    # The one fix to the payload: the API reads camelCase keys.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AttemptStatusMatrix(_CamelCase):
    outcome_code: str
    disposition: str
    call_duration_seconds: int
    anonymized: bool


class ArchivePayloadItem(_CamelCase):
    contact_id: str
    attempt_id: str
    status_matrix: AttemptStatusMatrix
    retention_period_days: int
    delete_active: bool = True


class ArchiveBatch(_CamelCase):
    campaign_id: str
    items: list[ArchivePayloadItem]
    force_cold_storage: bool = False

    @field_validator("items")
    @classmethod
    def check_batch_limit(cls, v: list[ArchivePayloadItem]) -> list[ArchivePayloadItem]:
        if len(v) > 200:
            raise ValueError("Batch size exceeds maximum limit of 200")
        return v


class CXoneAttemptArchiver:
    def __init__(self, oauth: CXoneOAuth, warehouse_callback_url: str, audit_log_path: str) -> None:
        self.oauth = oauth
        self.warehouse_callback_url = warehouse_callback_url
        self.audit_log_path = audit_log_path
        self.total_archived = 0
        self.total_failed = 0
        self.total_fetched = 0  # benchmark instrumentation, not in the tutorial
        self.latency_samples: list[float] = []

    def fetch_completed_attempts(self, campaign_id: str, limit: int = 100) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = []
        offset = 0
        while True:
            url = f"{self.oauth.base_url}/api/v2/campaigns/{campaign_id}/attempts"
            params: dict[str, str | int] = {"status": "completed", "limit": limit, "offset": offset}
            headers = {
                "Authorization": f"Bearer {self.oauth.get_token()}",
                "Accept": "application/json",
            }
            response = requests.get(url, params=params, headers=headers)
            response.raise_for_status()
            data = response.json()
            if not data:
                break
            attempts.extend(data)
            offset += limit
            if len(data) < limit:
                break
        return attempts

    def validate_and_partition(
        self, attempts: list[dict[str, Any]], campaign_id: str
    ) -> list[ArchiveBatch]:
        batches: list[ArchiveBatch] = []
        current_items: list[ArchivePayloadItem] = []
        for att in attempts:
            outcome = att.get("outcomeCode", "")
            if outcome not in APPROVED_OUTCOMES:
                continue
            if not att.get("anonymized", False):
                raise RuntimeError("Data anonymization verification failed")
            item = ArchivePayloadItem(
                contact_id=att["contactId"],
                attempt_id=att["id"],
                status_matrix=AttemptStatusMatrix(
                    outcome_code=outcome,
                    disposition=att.get("disposition", "ARCHIVED"),
                    call_duration_seconds=att.get("duration", 0),
                    anonymized=True,
                ),
                retention_period_days=att.get("retentionDays", 365),
            )
            current_items.append(item)
            if len(current_items) >= 200:
                batches.append(
                    ArchiveBatch(campaign_id=campaign_id, items=current_items, force_cold_storage=True)
                )
                current_items = []
        if current_items:
            batches.append(
                ArchiveBatch(campaign_id=campaign_id, items=current_items, force_cold_storage=True)
            )
        return batches

    def execute_archive(self, batch: ArchiveBatch) -> dict[str, Any]:
        url = f"{self.oauth.base_url}/api/v2/campaigns/{batch.campaign_id}/contacts/archive"
        headers = {
            "Authorization": f"Bearer {self.oauth.get_token()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        start_time = time.time()
        for attempt in range(3):
            response = requests.post(url, json=batch.model_dump(by_alias=True), headers=headers)
            latency_ms = (time.time() - start_time) * 1000
            if response.status_code == 200:
                self.latency_samples.append(latency_ms)
                result: dict[str, Any] = response.json()
                return result
            elif response.status_code == 429:
                time.sleep(1.5 * (2**attempt))
            elif response.status_code == 409:
                raise RuntimeError("Campaign conflict prevents atomic migration")
            else:
                response.raise_for_status()
        raise RuntimeError("Max retries exceeded")

    def sync_and_audit(self, batch: ArchiveBatch, result: dict[str, Any]) -> None:
        sync_payload = {
            "event_type": "CAMPAIGN_CONTACT_ARCHIVED",
            "campaign_id": batch.campaign_id,
            "archived_count": result.get("archivedCount", 0),
            "failed_count": result.get("failedCount", 0),
            "timestamp": datetime.utcnow().isoformat(),
        }
        try:
            requests.post(self.warehouse_callback_url, json=sync_payload, timeout=5)
        except Exception as e:
            logger.error(f"Warehouse callback failed: {e}")
        audit_entry = {
            "audit_id": f"aud-{datetime.utcnow().strftime('%Y%m%d%H%M%S')}",
            "campaign_id": batch.campaign_id,
            "batch_size": len(batch.items),
            "success_rate": (result.get("archivedCount", 0) / len(batch.items)) * 100,
            "cold_storage_triggered": batch.force_cold_storage,
            "processed_at": datetime.utcnow().isoformat(),
        }
        with open(self.audit_log_path, "a") as f:
            f.write(json.dumps(audit_entry) + "\n")

    def run(self, campaign_id: str) -> None:
        logger.info(f"Starting archive process for campaign {campaign_id}")
        attempts = self.fetch_completed_attempts(campaign_id)
        self.total_fetched += len(attempts)
        logger.info(f"Fetched {len(attempts)} completed attempts")
        batches = self.validate_and_partition(attempts, campaign_id)
        logger.info(f"Partitioned into {len(batches)} batches")
        for idx, batch in enumerate(batches):
            try:
                result = self.execute_archive(batch)
                self.total_archived += result.get("archivedCount", 0)
                self.total_failed += result.get("failedCount", 0)
                self.sync_and_audit(batch, result)
            except Exception as e:
                logger.error(f"Batch {idx} failed: {e}")
                self.total_failed += len(batch.items)
        avg_latency = (
            sum(self.latency_samples) / len(self.latency_samples) if self.latency_samples else 0
        )
        logger.info(
            f"Archive process complete. Archived: {self.total_archived}, "
            f"Failed: {self.total_failed}, Avg Latency: {avg_latency:.2f}ms"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The tutorial's archiver, for benchmarks.")
    parser.add_argument("campaigns", nargs="+", metavar="CAMPAIGN_ID")
    parser.add_argument("--callback-url", required=True, help="The warehouse callback URL.")
    parser.add_argument("--audit-log", required=True, help="File the audit lines go to.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    oauth = CXoneOAuth(
        os.environ["CXONE_CLIENT_ID"], os.environ["CXONE_CLIENT_SECRET"], os.environ["CXONE_BASE_URL"]
    )
    archiver = CXoneAttemptArchiver(oauth, args.callback_url, args.audit_log)
    aborted: dict[str, str] = {}
    for campaign_id in args.campaigns:
        # The tutorial runs one campaign per process; an exception ends that campaign.
        try:
            archiver.run(campaign_id)
        except Exception as e:
            logger.error(f"Campaign {campaign_id} aborted: {e}")
            aborted[campaign_id] = f"{type(e).__name__}: {e}"
    summary = {
        "fetched": archiver.total_fetched,
        "archived": archiver.total_archived,
        "failed": archiver.total_failed,
        "aborted": aborted,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
