"""Reading a file named by a policy, a variable or a neighbouring path, without hanging.

A path that is a FIFO, a character device or a socket would block ``open`` or ``read``
forever (a FIFO with no writer) or never end (``/dev/zero``). A policy under review is
untrusted input: it must not be able to stall a run or ``validate`` by naming one.
The file is opened non-blocking and checked once open, so what is checked is what is
read, not what the name pointed at a moment before.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
          | getattr(os, "O_NOCTTY", 0))


class NotARegularFile(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a file."""


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path`` (one past the limit,
    so the caller can tell a file that is too large). FileNotFoundError when there is
    none, NotARegularFile when it is not a regular file, OSError otherwise; its
    ``strerror`` says why in words."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as err:
        # A Unix socket cannot be opened at all (ENXIO, "No such device or address"):
        # said as what it is, like the kinds that can be opened and are checked below.
        mode = mode_of(path) if err.errno == errno.ENXIO else None
        if mode is None or stat.S_ISREG(mode):
            raise
        raise _not_regular(path, mode) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _not_regular(path: Path, mode: int) -> NotARegularFile:
    return NotARegularFile(errno.EINVAL, not_regular(mode), str(path))


def not_regular(mode: int) -> str:
    """"it is a socket, not a regular file": why what has ``mode`` is not read."""
    return f"it is {kind(mode)}, not a regular file"


def mode_of(path: Path, *, follow: bool = True) -> int | None:
    """The ``st_mode`` of what ``path`` names (a last link followed unless ``follow`` is
    off, as ``open`` with ``O_NOFOLLOW``); None when it cannot be read."""
    try:
        return os.stat(path, follow_symlinks=follow).st_mode
    except OSError:
        return None


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode``, in words."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")
