"""The :class:`~archiver.engine.backend.Backend` for ``connection.api: campaign-archive``:
the tutorial's archive contract, through :class:`archiver.cxone.CxoneClient`.

Listing pages by offset with a look-ahead; archiving posts one body per batch with
the batch's idempotency key. The API says whether a campaign dials only by refusing
an archive call with 409: ``dialing`` answers from that, and pausing is a PATCH of
the campaign's status.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from archiver.backends.campaign_archive.listing import ListingSource, listing_window
from archiver.backends.campaign_archive.payloads import archive_request
from archiver.backends.campaign_archive.records import parse_record
from archiver.backends.catalog import CAMPAIGN_ARCHIVE, CAMPAIGN_ARCHIVE_FIELDS
from archiver.cxone import CxoneClient
from archiver.engine.backend import ActResult, AttemptRecord, Backend, ItemOutcome, Page
from archiver.errors import AnswerLost, CampaignActive, UnreadableAnswer

STATUS = "status"  # the key of dialing()'s answer: the status to restore
ACTIVE = "ACTIVE"
# Which items of a batch the API did not archive is not in its answer; the engine
# finds them by listing the campaign again.
UNKNOWN_REASON = "archive call reported failed item(s) without saying which"


class CampaignArchiveBackend:
    """Lists and archives through the campaign archive API; safe to share between threads."""

    name = CAMPAIGN_ARCHIVE
    fields = CAMPAIGN_ARCHIVE_FIELDS
    reports_dialing = False  # only a 409 to an archive call says so

    def __init__(
        self,
        client: CxoneClient,
        *,
        page_size: int = 100,
        max_in_flight: int = 4,
        campaigns: int = 1,
        force_cold_storage: bool = False,
        delete_active: bool = True,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self._force_cold_storage = force_cold_storage
        self._delete_active = delete_active
        # Listing look-ahead and archive calls share max_in_flight slots, as one pool would.
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="list")
        self._source = ListingSource(
            self, page_size, self._pool, listing_window(max_in_flight, campaigns),
            max_attempts=max_attempts,
        )
        self._refused: set[str] = set()  # campaigns that answered an archive call with 409
        self._refused_lock = threading.Lock()

    # -- listing -------------------------------------------------------------------
    def list_attempts(self, campaign_id: str, *, limit: int, offset: int) -> list[object]:
        with self._slots:
            return self.client.list_attempts(campaign_id, limit=limit, offset=offset)

    def raw_pages(self, campaign_id: str) -> Iterator[Sequence[object]]:
        """The listing as the API sends it (records not yet parsed)."""
        return self._source.pages(campaign_id)

    def pages(self, campaign_id: str, *, since: str | None) -> Iterator[Page]:
        # Offset paging from the start: the API has no update time to go on from.
        for raw in self._source.pages(campaign_id):
            yield Page([parse_record(r) for r in raw])

    # -- acting --------------------------------------------------------------------
    def act(
        self, campaign_id: str, batch: Sequence[AttemptRecord], *, idempotency_key: str
    ) -> ActResult:
        request = archive_request(
            campaign_id, batch, force_cold_storage=self._force_cold_storage,
            delete_active=self._delete_active,
        )
        try:
            with self._slots:
                response = self.client.archive(
                    campaign_id, request, idempotency_key=idempotency_key
                )
        except CampaignActive:
            with self._refused_lock:
                self._refused.add(campaign_id)
            raise
        except UnreadableAnswer as err:
            # Accepted, but what it archived is not known: the engine lists the campaign
            # again, and an attempt gone from the listing was archived by this call.
            why = f"the archive call was accepted but its answer cannot be read ({err})"
            return ActResult({r.id: ("unknown", why) for r in batch}, status="unknown")
        except AnswerLost as err:
            # Sent, no answer: what it archived is found the same way. A 5xx answer ends
            # the server's work on the call; no answer (or a gateway's 504) may not.
            why = f"the archive call's answer was lost ({err})"
            answered = err.status is not None and err.status != 504
            return ActResult(
                {r.id: ("unknown", why) for r in batch}, status="unknown",
                lost="answered" if answered else "unanswered",
            )
        outcome: tuple[ItemOutcome, str] = ("archived", "")
        if response.failed_count > 0:
            outcome = ("unknown", UNKNOWN_REASON)
        elif response.archived_count != len(batch):
            # Fewer (or more) archived than sent, and none failed: the answer does not
            # account for every item, so none is taken as archived on its word.
            outcome = ("unknown", f"archive call answered {response.archived_count} archived "
                                  f"of {len(batch)} sent and none failed, without saying which")
        return ActResult(
            {r.id: outcome for r in batch},
            status=response.status,
            job_id=response.migration_job_id,
            raw=response.model_dump(by_alias=True),
        )

    def whole_contacts(self, campaign_id: str) -> bool:
        return False  # an archive call takes the attempts it names, nothing else

    # -- dialing -------------------------------------------------------------------
    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        with self._refused_lock:
            return {STATUS: ACTIVE} if campaign_id in self._refused else None

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        self.client.set_campaign_status(campaign_id, "PAUSED")

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        self.client.set_campaign_status(
            campaign_id, "ACTIVE" if dialing.get(STATUS) == ACTIVE else "PAUSED"
        )
        with self._refused_lock:
            self._refused.discard(campaign_id)

    def cancel(self) -> None:
        self.client.cancel()

    def close(self) -> None:
        # Look-ahead pages still in flight end first (each call has its deadline, and a
        # cancelled client cuts them): the client's watchdog must outlive them.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def _conforms(backend: CampaignArchiveBackend) -> Backend:
    return backend  # mypy checks here that CampaignArchiveBackend is a Backend
