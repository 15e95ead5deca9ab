"""Which files under a folder are policies, and which are policy tests.

``validate`` and ``test`` both walk a folder with :func:`files_under`, so a policy the
one command sees is never hidden from the other: every sub-folder is searched except
hidden ones (``.git``, the ``.archiver`` state folder), and symlinked folders are not
followed (a link back up would walk forever).
"""

from __future__ import annotations

import os
from pathlib import Path

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
