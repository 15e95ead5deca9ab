"""Which files under a folder are policies, and which are policy tests.

``validate`` and ``test`` both walk a folder with :func:`files_under`, so a policy the
one command sees is never hidden from the other: every sub-folder is searched except
hidden ones (``.git``, the ``.archiver`` state folder), and symlinked folders are not
followed (a link back up would walk forever).

A file found there is read, and what it holds quoted in errors, without anyone having
named it: a symlink among the files is read only when it leads to a file of the same
kind (a policy or a test file by its name, not hidden) inside the folder's repository
and not into ``.git`` (:func:`link_problem`). A link a change adds to a token file,
to the work tree's ``.env`` or to ``/proc/self/environ`` is refused unread.
"""

from __future__ import annotations

import os
from pathlib import Path

from archiver.policy.paths import GIT_DIR, is_inside, repository_root

POLICY_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder`` outside hidden folders, hidden files left out, sorted."""
    found: list[Path] = []
    for current, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.extend(Path(current) / name for name in names if not name.startswith("."))
    return sorted(found)


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


def is_policy_file(path: Path) -> bool:
    return path.name.endswith(POLICY_SUFFIXES) and not is_test_file(path)


def policy_files(folder: Path) -> list[Path]:
    """The policies anywhere below ``folder`` (``*.yaml``, ``*.yml``; not ``*.test.yaml``)."""
    return [p for p in files_under(folder) if is_policy_file(p) and p.is_file()]


def policy_test_files(folder: Path) -> list[Path]:
    """The policy test files anywhere below ``folder`` (``*.test.yaml``, ``*.test.yml``)."""
    return [p for p in files_under(folder) if is_test_file(p) and p.is_file()]


def link_problem(path: Path, folder: Path) -> str | None:
    """Why the file ``path``, found below ``folder``, is not read; None when it is not a
    symlink, or leads to a file of its own kind inside ``folder``'s repository."""
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    root = repository_root(folder)
    if not is_inside(root, target) or GIT_DIR in target.relative_to(root).parts:
        return (f"it is a symlink leading outside the repository ({root}) or into its "
                f"{GIT_DIR} folder; not read")
    kind = "policy test" if is_test_file(path) else "policy"
    same = is_test_file(target) if kind == "policy test" else is_policy_file(target)
    if target.name.startswith(".") or not same:
        return f"it is a symlink to a file that is not a {kind} file of the repository; not read"
    return None
