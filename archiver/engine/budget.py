"""``run --max-batches N``: at most N archive batches for the whole command.

One budget is shared by every campaign of every policy the command runs, so a
cautious first production run sends exactly as many batches as asked, however the
campaigns interleave. A batch is counted once it is found and before it is formed
(its composition committed), so a batch that is refused is never prepared, and an
attempt the run listed but did not batch stays pending for the next run. A batch
counts once however many tries its call takes, and whatever the answer; an open
batch of an earlier run that is sent again counts too.
"""

from __future__ import annotations

import threading


class BatchBudget:
    """A thread-safe count of archive batches against an optional limit."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the batch limit must be at least 1")
        self.limit = limit
        self._sent = 0
        self._lock = threading.Lock()

    @property
    def sent(self) -> int:
        """Batches taken so far (by every policy of the command)."""
        with self._lock:
            return self._sent

    @property
    def spent(self) -> bool:
        """Whether the limit is reached: no further batch may be sent."""
        with self._lock:
            return self.limit is not None and self._sent >= self.limit

    def take(self) -> bool:
        """Count one more batch; False (and nothing counted) when the limit is reached."""
        with self._lock:
            if self.limit is not None and self._sent >= self.limit:
                return False
            self._sent += 1
            return True
