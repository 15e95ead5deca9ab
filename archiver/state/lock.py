"""One run per state folder, enforced with a lock the operating system releases.

``fcntl.flock`` locks belong to the open file description: when the process
dies (even by SIGKILL) the kernel drops them, so a crashed run never leaves a
lock that blocks the next one. The file's content (pid, start time) is only
for the error message.

The state folder is made owner-only (0700) and the lock file is opened with
``O_NOFOLLOW`` (0600): a ``run.lock`` that is a symbolic link, say one committed
to a repository pointing at ``~/.bashrc``, is refused, never written through.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from archiver.errors import StateLockedError
from archiver.state import files
from archiver.state.folder import REFUSED


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        files.private_dir(self.path.parent, "the state folder", REFUSED)
        fd, _ = files.open_private(self.path, os.O_RDWR | os.O_CREAT, "the run lock", REFUSED)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            raise StateLockedError(
                f"another archiver run holds the state store {self.path.parent} "
                f"({holder or 'unknown process'}); wait for it to finish"
            ) from None
        except OSError as err:
            os.close(fd)
            raise files.storage_error("the run lock", self.path, err) from err
        # Only for the message a second run prints: a full disk must not stop the run here
        # (the state store reports it, naming the folder).
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {stamp}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
