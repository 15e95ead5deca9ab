"""Where a policy may reach on disk: inside its own repository, after symlinks.

A policy is reviewed text, not trusted code. Every path it names (templates, the
audit log, archive files, hold files) must land, once symlinks are followed, inside
the policy's repository: the git work tree that holds the policy file, else the
policy's own folder. ``..``, absolute paths and symlinks are all judged by where
they finally lead, not by how they are spelt.
"""

from __future__ import annotations

from pathlib import Path

from archiver.errors import ConfigError

GIT_DIR = ".git"


class OutsideRepository(ConfigError):
    """A path a policy names resolves outside the policy's repository."""


def repository_root(folder: Path) -> Path:
    """The git work tree holding ``folder`` (the nearest ancestor with ``.git``), else
    ``folder`` itself; symlinks resolved."""
    start = folder.resolve()
    for candidate in (start, *start.parents):
        if (candidate / GIT_DIR).exists():
            return candidate
    return start


def is_inside(root: Path, path: Path) -> bool:
    """True when ``path`` (already resolved) is ``root`` or below it."""
    return path == root or root in path.parents


def confine(root: Path, base: Path, written: str, *, what: str) -> Path:
    """``written`` (as the policy spells it) resolved against ``base`` with every symlink
    followed; OutsideRepository when that lands outside ``root``.

    The path need not exist yet (an audit log a first run creates): the part that
    exists is resolved, the rest is appended as written.
    """
    if "\0" in written:
        # No file name holds one (the system refuses it); said, not a traceback.
        raise OutsideRepository(
            f"{what} {written!r} contains a NUL character, which no file name can hold"
        )
    resolved = (base / written).resolve(strict=False)
    if not is_inside(root, resolved):
        raise OutsideRepository(
            f"{what} `{written}` resolves outside the policy's repository ({root}); "
            "a policy may only name files inside it"
        )
    if GIT_DIR in resolved.relative_to(root).parts:
        # Inside the work tree's folder, but git's own files (config, hooks) are not
        # the repository's content.
        raise OutsideRepository(
            f"{what} `{written}` resolves into the repository's {GIT_DIR} folder; "
            "a policy may only name files of the work tree"
        )
    return resolved
