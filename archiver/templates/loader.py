"""Where templates come from: ``*.j2`` files inside the policy's repository, nothing else.

Every template, the one a policy names and every ``{% include %}``, ``{% import %}`` and
``{% extends %}`` target, is read through :class:`RepositoryLoader`. A name is refused
unless it ends in ``.j2``, and its path, with every symlink followed, must be a regular
``.j2`` file inside the repository (``archiver.policy.paths``: the git work tree holding
the policy, else its folder). So a template cannot pull ``.env``, ``/etc/passwd`` or
``/proc/self/environ`` into a payload or an error message, by name or through a symlink.
Names are relative to the folder of the template the policy names.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound
from jinja2.exceptions import SecurityError

from archiver.regular_file import mode_of, not_regular

SUFFIX = ".j2"
MAX_TEMPLATE_BYTES = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO must not hang the open


class TemplateRefused(SecurityError):
    """A template name the loader will not read; the message says why, never what is in it."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"cannot include {name!r}: {reason}")


def template_problem(root: Path, base: Path, written: str) -> str | None:
    """Why ``written`` (relative to ``base``) may not be loaded as a template, or None."""
    try:
        locate(root, base, written)
    except TemplateRefused as refused:
        return refused.reason
    return None


def locate(root: Path, base: Path, written: str) -> Path:
    """The file ``written`` (relative to ``base``) names, symlinks followed; TemplateRefused
    unless it is a ``*.j2`` name leading to a ``*.j2`` file inside ``root``."""
    # Imported here: archiver.policy imports this package to check a policy's templates.
    from archiver.policy.paths import OutsideRepository, confine, is_inside

    if not written.endswith(SUFFIX):
        raise TemplateRefused(written, f"only `*{SUFFIX}` templates are loaded")
    try:
        resolved = confine(root, base, written, what="template")
    except OutsideRepository:
        where = "into a .git folder" if is_inside(root, (base / written).resolve()) else (
            f"outside {root}")
        raise TemplateRefused(written, f"it leads {where} (symlinks followed)") from None
    if not resolved.name.endswith(SUFFIX):
        raise TemplateRefused(
            written, f"it is a symlink to a file that is not a `*{SUFFIX}` template"
        )
    return resolved


class RepositoryLoader(BaseLoader):
    """Loads ``*.j2`` templates named relative to ``folder``, only from inside ``root``."""

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self.root = root

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        resolved = locate(self.root, self.folder, template)
        text, mtime = _read(template, resolved)
        shown = os.path.normpath(self.folder / template)

        def uptodate() -> bool:
            try:
                same = locate(self.root, self.folder, template) == resolved
                return same and os.stat(resolved).st_mtime_ns == mtime
            except (TemplateRefused, OSError):
                return False

        return text, shown, uptodate


def _read(name: str, path: Path) -> tuple[str, int]:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        raise TemplateNotFound(name) from None
    except OSError as err:
        # A socket cannot be opened at all (ENXIO): said as what it is.
        mode = mode_of(path, follow=False) if err.errno == errno.ENXIO else None
        if mode is not None and not stat.S_ISREG(mode):
            raise TemplateRefused(name, not_regular(mode)) from None
        raise TemplateRefused(name, f"cannot read it: {err.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise TemplateRefused(name, not_regular(info.st_mode))
        data = file.read(MAX_TEMPLATE_BYTES + 1)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateRefused(name, f"it is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8"), info.st_mtime_ns
    except UnicodeDecodeError:
        raise TemplateRefused(name, "it is not UTF-8 text") from None
