"""Progress of a run on stderr: a live rich display on a terminal, plain log lines elsewhere.

Each campaign has two phases. While listing, the count is the attempts listed
and the rate is the listing rate; once the engine says how many attempts wait
for archive batches (``planned``), the count is the attempts archived (or
failed) out of that, with rate and ETA. Both displays are engine observers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from archiver.report.redact import printable
from archiver.report.summary import stopped_by_interruption

log = logging.getLogger("archiver.progress")

# Plain progress lines per campaign at most this often (seconds); phase changes always log.
LOG_INTERVAL_SECONDS = 10.0


def _clock_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def console_lines(console: Console) -> Callable[[str], None]:
    """A line writer for log handlers: through ``console``, so lines land above a live display."""

    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

    return write


class RateColumn(ProgressColumn):
    """Items per second of the current phase (its average once finished)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if task.finished and not speed and task.elapsed:
            speed = task.completed / task.elapsed
        return Text("?/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """``ETA h:mm:ss`` while the total is known, ``took h:mm:ss`` once finished."""

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text(f"took {_clock_time(task.finished_time)}", style="progress.elapsed")
        if task.total is None:
            return Text("")
        return Text(f"ETA {_clock_time(task.time_remaining)}", style="progress.remaining")


class TerminalProgress:
    """The live display: one line per campaign."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[phase]:<10}"),
            BarColumn(bar_width=24),
            TextColumn("listed {task.fields[listed]:>7,}"),
            TextColumn("archived {task.fields[archived]:>7,}{task.fields[of]}"),
            TextColumn("failed {task.fields[failed]:,}"),
            RateColumn(),
            EtaColumn(),
            console=console,
            refresh_per_second=4,
        )
        self._tasks: dict[str, TaskID] = {}
        self._archiving: set[str] = set()
        self._counts: dict[str, _Counts] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def _task(self, campaign_id: str) -> TaskID:
        task = self._tasks.get(campaign_id)
        if task is None:
            task = self._progress.add_task(
                printable(campaign_id), total=None, phase="listing", listed=0, archived=0, failed=0, of=""
            )
            self._tasks[campaign_id] = task
        return task

    def _start_archiving(self, campaign_id: str, total: int | None) -> TaskID:
        task = self._task(campaign_id)
        if campaign_id not in self._archiving:
            self._archiving.add(campaign_id)
            counts = self._counts.setdefault(campaign_id, _Counts())
            # A fresh rate and ETA: the listing rate says nothing about archiving.
            # reset() replaces every field, so all of them are given again.
            self._progress.reset(
                task, total=total, completed=0, phase="archiving", listed=counts.listed,
                archived=counts.archived, failed=counts.failed, of="",
            )
        if total is not None:
            self._progress.update(task, total=total, of=f"/{total:,}")
        return task

    def campaign_started(self, campaign_id: str) -> None:
        with self._lock:
            self._task(campaign_id)

    def listed(self, campaign_id: str, count: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(campaign_id, _Counts())
            counts.listed += count
            self._progress.update(self._task(campaign_id), advance=count, listed=counts.listed)

    def planned(self, campaign_id: str, to_archive: int) -> None:
        with self._lock:
            self._start_archiving(campaign_id, to_archive)

    def archived(self, campaign_id: str, archived: int, failed: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(campaign_id, _Counts())
            counts.archived += archived
            counts.failed += failed
            self._progress.update(
                self._start_archiving(campaign_id, None),
                advance=archived + failed,
                archived=counts.archived,
                failed=counts.failed,
            )

    def campaign_finished(
        self, campaign_id: str, status: str, reason: str, failed: int = 0
    ) -> None:
        with self._lock:
            counts = self._counts.setdefault(campaign_id, _Counts())
            counts.failed += failed
            done = counts.archived + counts.failed if campaign_id in self._archiving else counts.listed
            phase = _finished(status, reason)
            self._progress.update(
                self._task(campaign_id), total=done, completed=done, phase=phase,
                failed=counts.failed,
            )

    def paused(self, campaign_id: str) -> None:
        with self._lock:
            self._progress.update(self._task(campaign_id), phase="paused")

    def resumed(self, campaign_id: str) -> None:
        with self._lock:
            self._progress.update(self._task(campaign_id), phase="archiving")


def _finished(status: str, reason: str) -> str:
    # A campaign that only the run's stop failed is interrupted: the next run goes on.
    return "interrupted" if status == "failed" and stopped_by_interruption(reason) else status


@dataclass
class _Counts:
    listed: int = 0
    archived: int = 0
    failed: int = 0


@dataclass
class _Phase:
    started: float
    listed: int = 0
    planned: int | None = None
    archiving_since: float | None = None
    done: int = 0
    archived: int = 0
    failed: int = 0
    last_line: float = 0.0


class LogProgress:
    """Progress as INFO log lines, for pipes, files and ``--quiet``."""

    def __init__(
        self,
        interval: float = LOG_INTERVAL_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._campaigns: dict[str, _Phase] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def _phase(self, campaign_id: str) -> _Phase:
        return self._campaigns.setdefault(campaign_id, _Phase(started=self._clock()))

    def _due(self, phase: _Phase) -> bool:
        now = self._clock()
        if now - phase.last_line < self._interval:
            return False
        phase.last_line = now
        return True

    def campaign_started(self, campaign_id: str) -> None:
        with self._lock:
            self._phase(campaign_id).last_line = self._clock()
        log.info("campaign %s: listing", campaign_id)

    def listed(self, campaign_id: str, count: int) -> None:
        with self._lock:
            phase = self._phase(campaign_id)
            phase.listed += count
            if not self._due(phase):
                return
            rate = phase.listed / max(self._clock() - phase.started, 1e-9)
            listed = phase.listed
        log.info("campaign %s: listed %d (%.0f/s)", campaign_id, listed, rate)

    def planned(self, campaign_id: str, to_archive: int) -> None:
        with self._lock:
            phase = self._phase(campaign_id)
            phase.planned = to_archive
            phase.archiving_since = phase.last_line = self._clock()
            listed = phase.listed
        log.info("campaign %s: listed %d, %d to archive", campaign_id, listed, to_archive)

    def archived(self, campaign_id: str, archived: int, failed: int) -> None:
        with self._lock:
            phase = self._phase(campaign_id)
            now = self._clock()
            # Without a plan from the engine, the first batch is how we learn listing ended.
            announce = phase.archiving_since is None and phase.planned is None
            if phase.archiving_since is None:
                phase.archiving_since = phase.last_line = now
            phase.done += archived + failed
            phase.archived += archived
            phase.failed += failed
            listed = phase.listed
            line = self._archive_line(phase, now) if self._due(phase) else None
        if announce:
            log.info("campaign %s: listed %d, archiving", campaign_id, listed)
        if line is not None:
            log.info("campaign %s: %s", campaign_id, line)

    @staticmethod
    def _archive_line(phase: _Phase, now: float) -> str:
        elapsed = now - (phase.archiving_since or now)
        rate = phase.done / elapsed if elapsed > 0 else None
        left = None if phase.planned is None else max(phase.planned - phase.done, 0)
        eta = None if left is None or not rate else left / rate
        of = "" if phase.planned is None else f"/{phase.planned}"
        speed = "?" if rate is None else f"{rate:.0f}"
        return f"archived {phase.archived}{of}, failed {phase.failed} ({speed}/s, eta {_clock_time(eta)})"

    def campaign_finished(
        self, campaign_id: str, status: str, reason: str, failed: int = 0
    ) -> None:
        with self._lock:
            phase = self._phase(campaign_id)
            phase.failed += failed
            elapsed = self._clock() - phase.started
            counts = (phase.listed, phase.archived, phase.failed)
        log.info(
            "campaign %s %s: listed %d, archived %d, failed %d in %.1f s",
            campaign_id, _finished(status, reason), *counts, elapsed,
        )

    def paused(self, campaign_id: str) -> None:
        return None  # the engine logs pauses itself

    def resumed(self, campaign_id: str) -> None:
        return None
