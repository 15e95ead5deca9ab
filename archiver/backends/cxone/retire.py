"""``action: retire``: the archived attempts' prospects leave their calling list.

``DELETE lists/call-lists/{list}/removeProspects`` answers per record: a 200 can
carry failures, so each attempt is archived or failed by its prospect's result. A
refusal in the answer to a repeated call (an earlier try's answer was lost to a 5xx
or a timeout, and that try may have removed the prospect), every prospect of a
repeated call refused as a whole (a 4xx) and of a 2xx answer that cannot be read,
does not name it or names it both removed and kept, is ``unknown``: the engine lists the calling list again, and a prospect gone from it was
retired.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from archiver.backends.cxone import answers, wire
from archiver.backends.cxone.client import CxoneApi, RepeatRefused
from archiver.backends.cxone.records import LIST_HANDLE
from archiver.engine.backend import ActResult, AttemptRecord, ItemOutcome
from archiver.errors import UnreadableAnswer

Codes = Mapping[str, str | None]  # externalId -> resultCode


class Retirer:
    def __init__(self, api: CxoneApi) -> None:
        self._api = api
        # list -> externalId -> resultCode of prospects removed by this backend. The
        # engine batches a prospect's attempts together (Backend.whole_contacts); this
        # does not count on it: a prospect met again by this backend is not removed again.
        self._removed: dict[str, dict[str, str | None]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def retire(self, campaign_id: str, batch: Sequence[AttemptRecord]) -> ActResult:
        outcomes: dict[str, tuple[ItemOutcome, str]] = {}
        by_list: dict[str, list[AttemptRecord]] = {}
        for record in batch:
            list_id = record.handle.get(LIST_HANDLE)
            if not list_id or not record.handle.get(wire.EXTERNAL_ID):
                outcomes[record.id] = ("failed", "no calling-list prospect to retire")
            else:
                by_list.setdefault(list_id, []).append(record)
        raw: dict[str, Any] = {}
        for list_id, members in by_list.items():
            unsure: dict[str, str] = {}
            before, removed, refused = self._remove_once(
                campaign_id, list_id, members, raw, unsure
            )
            for record in members:
                outcomes[record.id] = _outcome(record, list_id, before, removed, refused, unsure)
        archived = sum(1 for outcome, _ in outcomes.values() if outcome == "archived")
        maybe = any(outcome == "unknown" for outcome, _ in outcomes.values())
        status = (
            "retired" if archived == len(outcomes)
            else "partially_retired" if archived or maybe else "failed"
        )
        return ActResult(outcomes, status=status, raw=raw)

    def _remove_once(
        self, campaign_id: str, list_id: str, members: Sequence[AttemptRecord],
        raw: dict[str, Any], unsure: dict[str, str],
    ) -> tuple[Codes, Codes, Codes]:
        """``unsure`` gets the prospects the call may or may not have removed, with why:
        the engine lists the calling list again to see."""
        # One removal at a time per list: two batches holding attempts of one
        # prospect would otherwise both remove it, and the second would fail.
        with self._lock(list_id):
            done = self._removed.setdefault(list_id, {})
            # Only this batch's own prospects: the run's others are no concern of it.
            before = {
                r.handle[wire.EXTERNAL_ID]: done[r.handle[wire.EXTERNAL_ID]]
                for r in members if r.handle[wire.EXTERNAL_ID] in done
            }
            pending = list(dict.fromkeys(
                r.handle[wire.EXTERNAL_ID] for r in members
                if r.handle[wire.EXTERNAL_ID] not in before
            ))
            if not pending:
                return before, {}, {}
            path = wire.REMOVE_PROSPECTS.format(list_id=quote(list_id, safe=""))
            try:
                body, repeated = self._api.delete(
                    path, wire.remove_prospects_body(pending), campaign_id=campaign_id
                )
                answer = answers.read(wire.RemoveProspects, body, path, campaign_id, acts=True)
            except UnreadableAnswer as err:
                # Accepted, but its answer cannot be read: which prospects left is unknown.
                # (Any other error is a refusal, or a login on the way: nothing removed.)
                unsure.update(dict.fromkeys(
                    pending, f"calling list {list_id}: removal accepted, answer unreadable: {err}"
                ))
                return before, {}, {}
            except RepeatRefused as err:
                # An earlier try may have removed them (its answer was lost): the refusal
                # of the repeat does not say they are still on the list.
                unsure.update(dict.fromkeys(pending, f"calling list {list_id}: {err}"))
                return before, {}, {}
            raw[list_id] = answer.model_dump(by_alias=True)
            refused = {r.external_id: r.result_code for r in answer.failed_records}
            # Named both removed and kept: the answer contradicts itself, so it proves
            # neither; the listing shows whether the prospect left.
            unsure.update(
                (r.external_id, f"calling list {list_id}: the removeProspects answer names "
                                f"prospect {r.external_id} both removed and kept")
                for r in answer.successful_records
                if r.external_id in refused and r.external_id in pending
            )
            if repeated:
                # An earlier try may have removed them (its answer was lost): a refusal
                # now may only say they are gone.
                unsure.update(
                    (e, f"calling list {list_id} kept prospect {e}: {c or 'failed'}, "
                        "answering a repeated removal")
                    for e, c in refused.items()
                )
            removed = {
                r.external_id: r.result_code
                for r in answer.successful_records
                if r.external_id not in refused and r.external_id in pending
            }  # a prospect not asked for in this call is none of its doing
            done.update(removed)
            return before, removed, refused

    def _lock(self, list_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(list_id, threading.Lock())


def _outcome(
    record: AttemptRecord, list_id: str, before: Codes, removed: Codes, refused: Codes,
    unsure: Mapping[str, str],
) -> tuple[ItemOutcome, str]:
    ext = record.handle[wire.EXTERNAL_ID]
    if ext in before:
        return "archived", f"prospect {ext} already removed from calling list {list_id}"
    if ext in unsure:
        return "unknown", unsure[ext]
    if ext in refused:
        return "failed", f"calling list {list_id} kept prospect {ext}: {refused[ext] or 'failed'}"
    if ext in removed:
        code = f" ({removed[ext]})" if removed[ext] else ""
        return "archived", f"removed from calling list {list_id}{code}"
    # Neither removed nor refused: the answer does not say what became of it.
    return "unknown", f"prospect {ext} missing from the removeProspects answer"
