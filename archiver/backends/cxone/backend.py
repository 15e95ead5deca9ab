"""The :class:`~archiver.engine.backend.Backend` for ``connection.api: cxone``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from archiver.backends.catalog import CXONE_ATTEMPT_FIELDS, CXONE_CONTACT_FIELDS
from archiver.backends.cxone import answers, paging, records, timestamps, wire
from archiver.backends.cxone.client import CxoneApi
from archiver.backends.cxone.dialing import Dialer
from archiver.backends.cxone.retire import Retirer
from archiver.engine.backend import (
    ActResult,
    AttemptRecord,
    Backend,
    ItemOutcome,
    Page,
    RecordField,
)
from archiver.errors import ConfigError, TerminalApiError

Action = Literal["export", "retire"]
SourceType = Literal["completed_contacts", "call_list_attempts"]
# The first run's lower bound when the policy names no source.since.
DEFAULT_SINCE = "2000-01-01T00:00:00.000Z"
# No tenant has more; paging dispositions past it is an answer gone wrong.
MAX_DISPOSITIONS = 100_000

_CONTACT_FIELDS = CXONE_CONTACT_FIELDS
_ATTEMPT_FIELDS = CXONE_ATTEMPT_FIELDS


@dataclass(frozen=True, slots=True)
class Source:
    type: SourceType = "completed_contacts"
    page_size: int = 100
    since: str | None = None
    call_list: str | None = None


class CxoneBackend:
    """Lists, exports or retires, and pauses dialing through NICE CXone's platform API."""

    name = "cxone"
    reports_dialing = True  # the campaign's skills and whether each is running

    def __init__(
        self,
        api: CxoneApi,
        source: Source,
        actions: Mapping[str, Action] | None = None,
        *,
        stop_wait_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        stopping: threading.Event | None = None,
    ) -> None:
        self.api = api
        self._stopping = stopping if stopping is not None else threading.Event()
        self.source = source
        self.actions: Mapping[str, Action] = dict(actions or {})
        self.fields: frozenset[RecordField] = (
            _CONTACT_FIELDS if source.type == "completed_contacts" else _ATTEMPT_FIELDS
        )
        self._retirer = Retirer(api)
        self._dialer = Dialer(
            api, stop_wait_seconds=stop_wait_seconds, poll_seconds=poll_seconds, sleep=sleep
        )
        self._names: dict[int, str] | None = None
        self._missed: set[int] = set()
        self._names_lock = threading.Lock()
        self.listings: dict[str, paging.Stats] = {}  # the last listing's stats, per campaign

    # -- listing -------------------------------------------------------------------
    def pages(self, campaign_id: str, *, since: str | None) -> Iterator[Page]:
        stats = self.listings[campaign_id] = paging.Stats()
        top = min(max(self.source.page_size, 2), wire.MAX_TOP)
        if self.source.type == "call_list_attempts":
            yield from self._attempt_pages(campaign_id, top, stats)
            return
        start = since or self.source.since or DEFAULT_SINCE
        ns = timestamps.parse(start)
        if ns is None:
            raise ConfigError(f"source.since {start!r} is not a UTC timestamp")
        # contacts/completed filters by campaignId: an id the tenant does not know lists
        # nothing, like a campaign with no new contacts. Its skills answer 404 instead.
        self._dialer.require_campaign(campaign_id)

        def fetch(bound: str, skip: int, top: int) -> tuple[list[paging.Row], int | None]:
            params = wire.completed_params(campaign_id, bound, skip, top)
            body = self.api.get(wire.COMPLETED_CONTACTS, params, campaign_id=campaign_id)
            listed = answers.read(
                wire.CompletedContacts, body, wire.COMPLETED_CONTACTS, campaign_id
            )
            rows = [
                records.row(raw, wire.CONTACT_ID, wire.LAST_UPDATE_TIME)
                for raw in listed.completed_contacts
            ]
            polled = timestamps.parse(listed.last_poll_time) if listed.last_poll_time else None
            return rows, polled

        what = f"campaign {campaign_id}: {wire.COMPLETED_CONTACTS}"
        last = timestamps.format_ms(ns)
        for rows, bound in paging.walk(fetch, since=last, top=top, stats=stats, what=what):
            if rows or bound != last:  # a page of repeats that moves nothing is no page
                yield Page([records.contact(r.raw, campaign_id, self._name) for r in rows], bound)
            last = bound

    def _attempt_pages(self, campaign_id: str, top: int, stats: paging.Stats) -> Iterator[Page]:
        list_id = self.source.call_list
        if not list_id:
            raise ConfigError("source.type call_list_attempts needs source.call_list")
        path = wire.CALL_LIST_ATTEMPTS.format(list_id=quote(list_id, safe=""))

        def fetch(_bound: str, skip: int, top: int) -> tuple[list[paging.Row], None]:
            body = self.api.get(path, wire.attempts_params(skip, top), campaign_id=campaign_id)
            listed = answers.read(wire.CallListAttempts, body or {"resultSet": {}}, path,
                                  campaign_id)
            rows = [records.row(raw, wire.CONTACT_ID, None)
                    for raw in listed.result_set.contact_attempts]
            return rows, None

        what = f"calling list {list_id}: attempts"
        # No update time to page from: the anchoring and the deduplication only.
        for rows, _ in paging.walk(fetch, since="", top=top, rebase=False, stats=stats, what=what):
            if rows:
                yield Page([records.attempt(r.raw, list_id) for r in rows], None)

    def _name(self, disposition_id: int) -> str | None:
        """A disposition's name, from ``GET dispositions`` (read again once per unknown id)."""
        with self._names_lock:
            if self._names is None or (
                disposition_id not in self._names and disposition_id not in self._missed
            ):
                self._names = self._load_names()
                if disposition_id not in self._names:
                    self._missed.add(disposition_id)
            return self._names.get(disposition_id)

    def _load_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        skip, top = 0, wire.LIST_TOP
        while True:
            body = self.api.get(wire.DISPOSITIONS, wire.page_params(skip, top))
            listed = answers.read(wire.Dispositions, body, wire.DISPOSITIONS, None)
            page, total = listed.dispositions, listed.total()
            known = len(names)
            names.update((d.disposition_id, d.disposition_name) for d in page)
            # The last page: an empty one, or one shorter than asked for unless the
            # totalRecords it gives says more are to come (a tenant may answer fewer
            # than `top` asks before its last page).
            more = total is not None and skip + len(page) < total
            if not page or (len(page) < top and not more):
                return names
            # A page of nothing new (skip ignored), or more than any tenant has: paging on
            # would never end.
            problem = (
                "a page of dispositions already listed (is skip ignored?)"
                if len(names) == known else
                f"more than {MAX_DISPOSITIONS} dispositions" if len(names) > MAX_DISPOSITIONS
                else None
            )
            if problem:
                raise TerminalApiError(
                    f"answer is not valid: {problem} at skip {skip}",
                    endpoint=f"GET {wire.DISPOSITIONS}",
                )
            skip += len(page)

    # -- acting --------------------------------------------------------------------
    def act(
        self, campaign_id: str, batch: Sequence[AttemptRecord], *, idempotency_key: str
    ) -> ActResult:
        # CXone takes no idempotency key: export sends nothing, and retire removes each
        # prospect once per backend (a repeat would be reported as a failed record).
        if self.actions.get(campaign_id, "export") == "retire":
            return self._retirer.retire(campaign_id, batch)
        done: dict[str, tuple[ItemOutcome, str]] = {
            r.id: ("archived", "exported; nothing changed on the tenant") for r in batch
        }
        return ActResult(done, status="exported")

    def whole_contacts(self, campaign_id: str) -> bool:
        # A retired prospect leaves the calling list with every attempt it had.
        return self.actions.get(campaign_id, "export") == "retire"

    # -- dialing -------------------------------------------------------------------
    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        return self._dialer.dialing(campaign_id)

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        self._dialer.pause(campaign_id, dialing)

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        self._dialer.resume(campaign_id, dialing)

    def check(self) -> None:
        """Log in and discover the API host now, so refused credentials or an unknown
        tenant stop a run before it starts."""
        self.api.check()

    def cancel(self) -> None:
        """Every wait ends at once and every call in flight is cut (CallAbandoned).
        Takes no lock: safe from a signal handler."""
        self._stopping.set()
        self.api.cancel()

    def close(self) -> None:
        self.api.close()


def _conforms(backend: CxoneBackend) -> Backend:
    return backend  # mypy checks here that CxoneBackend is a Backend
