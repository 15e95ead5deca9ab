"""Owner-only files and folders: how the state folder, its files and the audit log are opened.

A state folder can arrive with a repository (a committed ``.archiver/``) and an audit log
path is whatever a policy says, so nothing found there is trusted: a symbolic link where a
folder or file should be, something other than a regular file, or a file another user owns
is refused before anything is read or written. Folders are created 0700 and files 0600;
a state folder or file of ours with a looser mode (earlier versions made them 0755 and
0644) is tightened. Files are opened with ``O_NOFOLLOW``, so a link swapped in after the
check is refused by the kernel too.

OS errors become :class:`StorageError` (exit 74) naming the path and what to do.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from archiver.errors import StorageError, UnsafeFileError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_GROUP_OTHER = 0o077
# O_NONBLOCK: a FIFO swapped in after the check must not hang the open (regular files ignore it).
_OPEN = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(what: str, path: Path, err: OSError, *, retry: str = "run again") -> StorageError:
    """One line naming ``path``, what failed and what to do about it."""
    reason = err.strerror or str(err)
    blocking = blocking_part(path) if err.errno in (errno.EEXIST, errno.ENOTDIR) else None
    if blocking is not None and blocking[1] == NOT_A_FOLDER:
        # mkdir of a path through a file says "File exists": name the file instead.
        return StorageError(f"{what} {path}: {blocking[0]} is {NOT_A_FOLDER}; choose "
                            f"another path, then {retry}")
    if err.errno in _NO_SPACE:
        advice = f"free space on the disk holding {path.parent}, then {retry}"
    elif err.errno in _NOT_WRITABLE:
        advice = f"make {path.parent} writable by this user, then {retry}"
    else:
        advice = f"check the disk and the path, then {retry}"
    return StorageError(f"{what} {path}: {reason}; {advice}")


NOT_A_FOLDER = "a file, not a folder"


def blocking_part(path: Path) -> tuple[Path, str] | None:
    """What keeps the folder ``path`` from being made: its first leading part (``path``
    itself included) that exists and is not a folder (NOT_A_FOLDER), or that cannot be
    looked at (a folder that cannot be entered, a name too long), with what it is; None
    when nothing is in the way. Links are followed, as mkdir follows them."""
    for end in range(1, len(path.parts) + 1):
        part = Path(*path.parts[:end])
        try:
            info = os.stat(part)
        except FileNotFoundError:
            return None  # nothing past a missing part exists
        except OSError as err:
            return part, f"which cannot be looked at ({err.strerror or err})"
        if not stat.S_ISDIR(info.st_mode):
            return part, NOT_A_FOLDER
    return None


def private_dir(path: Path, what: str, advice: str) -> None:
    """Make ``path`` a folder of ours only we can enter: create it 0700 (missing parents as
    usual), or check the one there and tighten its mode. ``advice`` ends a refusal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = True
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            created = False
        _check(path, os.lstat(path), what, advice, folder=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _OPEN)
    except OSError as err:
        if err.errno == errno.ELOOP:  # became a link after the check
            raise refused(what, path, "it is a symbolic link", advice) from err
        raise storage_error(what, path, err) from err
    try:
        info = os.fstat(fd)
        _check(path, info, what, advice, folder=True)
        mode = stat.S_IMODE(info.st_mode)
        if created and mode != PRIVATE_DIR:  # a umask took more than group and other bits
            os.fchmod(fd, PRIVATE_DIR)
        elif mode & _GROUP_OTHER:
            os.fchmod(fd, mode & ~_GROUP_OTHER)
    except OSError as err:
        raise storage_error(what, path, err) from err
    finally:
        os.close(fd)


def open_private(
    path: Path, flags: int, what: str, advice: str, *, tighten: bool = True
) -> tuple[int, bool]:
    """Open the regular file ``path`` of ours with ``O_NOFOLLOW``; with ``O_CREAT`` in
    ``flags`` a missing one is created 0600. Returns the descriptor and whether it was
    created. A link, a non-regular file or another user's file is refused before it is
    opened; ``tighten`` drops group and other bits from an existing file's mode."""
    existed = check_private(path, what, advice, tighten=False)
    try:
        fd = os.open(path, flags | _OPEN, PRIVATE_FILE)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise refused(what, path, "it is a symbolic link", advice) from err
        raise storage_error(what, path, err) from err
    try:
        info = os.fstat(fd)
        _check(path, info, what, advice)
        mode = stat.S_IMODE(info.st_mode)
        if not existed and mode != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
        elif tighten and mode & _GROUP_OTHER:
            os.fchmod(fd, mode & ~_GROUP_OTHER)
    except BaseException as err:
        os.close(fd)
        if isinstance(err, OSError):
            raise storage_error(what, path, err) from err
        raise
    return fd, not existed


def check_private(path: Path, what: str, advice: str, *, tighten: bool = True) -> bool:
    """Check ``path`` without opening it (closing a descriptor of a file SQLite has open
    would drop SQLite's locks on it): refuse a link, a non-regular file, another user's
    file; ``tighten`` a loose mode. Returns whether it exists. Meant for files in a folder
    :func:`private_dir` made ours, where nobody else can swap them after the check."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise storage_error(what, path, err) from err
    _check(path, info, what, advice)
    mode = stat.S_IMODE(info.st_mode)
    if tighten and mode & _GROUP_OTHER:
        try:
            os.chmod(path, mode & ~_GROUP_OTHER)
        except OSError as err:
            raise storage_error(what, path, err) from err
    return True


@contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside (SQLite's -wal, -shm and -journal files) get no group or
    other bits, whatever the caller's umask."""
    previous = os.umask(_GROUP_OTHER)
    try:
        yield
    finally:
        os.umask(previous)


def refused(what: str, path: Path, why: str, advice: str) -> UnsafeFileError:
    return UnsafeFileError(f"refusing {what} {path}: {why}; {advice}")


def _check(path: Path, info: os.stat_result, what: str, advice: str, *, folder: bool = False) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise refused(what, path, "it is a symbolic link", advice)
    if folder and not stat.S_ISDIR(info.st_mode):
        raise refused(what, path, "it is not a folder", advice)
    if not folder and not stat.S_ISREG(info.st_mode):
        raise refused(what, path, "it is not a regular file", advice)
    if info.st_uid != os.geteuid():
        raise refused(what, path, f"it belongs to another user (uid {info.st_uid})", advice)
    if folder and info.st_mode & stat.S_ISVTX:
        raise refused(what, path, "it is a shared folder (sticky bit, like /tmp)", advice)


def check_dir(path: Path, what: str, advice: str) -> None:
    """Refuse ``path`` unless it is a folder of ours (not a link, not another user's, not
    shared), changing nothing: for commands that only read."""
    try:
        info = os.lstat(path)
    except OSError as err:
        raise storage_error(what, path, err) from err
    _check(path, info, what, advice, folder=True)


def fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable; not every platform allows it."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_output(path: Path) -> bool:
    """Remove the file ``write_output`` would have replaced at ``path`` (a report an
    earlier run left, say); whether there was one. Only a regular file (or a link to one:
    the link goes) is removed: what ``write_output`` writes in place (a device such as
    ``/dev/null``, a named pipe) or a folder is left. OSError is the caller's to report."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False  # nothing there (a part of the path is a file: no report under it)
    if not stat.S_ISREG(mode):
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def write_output(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, a file archiver leaves for people or other programs (a
    run report, a metrics file, an evidence bundle): under a temporary name beside it,
    then renamed over it, so a reader never sees half of one. Something there that is
    not a regular file or a folder (a device such as ``/dev/null``, a named pipe) is
    written in place instead: a rename would put a regular file where it was. OSError
    is the caller's to report."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with path.open("wb") as out:
            out.write(data)
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
