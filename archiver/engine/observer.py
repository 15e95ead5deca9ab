"""Hooks the engine calls as a run moves; progress, logs and metrics listen here."""

from __future__ import annotations

from typing import Protocol


class RunObserver(Protocol):
    def campaign_started(self, campaign_id: str) -> None: ...

    def listed(self, campaign_id: str, count: int) -> None: ...

    def planned(self, campaign_id: str, to_archive: int) -> None:
        """Listing is complete and ``to_archive`` attempts wait for archive batches."""

    def archived(self, campaign_id: str, archived: int, failed: int) -> None: ...

    def campaign_finished(
        self, campaign_id: str, status: str, reason: str, failed: int = 0
    ) -> None:
        """The campaign ended; ``failed``: its attempts failed then, never in a batch (a
        campaign that stopped early: what it listed and did not archive)."""

    def paused(self, campaign_id: str) -> None: ...

    def resumed(self, campaign_id: str) -> None: ...


class NullObserver:
    """An observer that ignores everything."""

    def campaign_started(self, campaign_id: str) -> None:
        pass

    def listed(self, campaign_id: str, count: int) -> None:
        pass

    def planned(self, campaign_id: str, to_archive: int) -> None:
        pass

    def archived(self, campaign_id: str, archived: int, failed: int) -> None:
        pass

    def campaign_finished(
        self, campaign_id: str, status: str, reason: str, failed: int = 0
    ) -> None:
        pass

    def paused(self, campaign_id: str) -> None:
        pass

    def resumed(self, campaign_id: str) -> None:
        pass
