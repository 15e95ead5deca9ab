"""Which reviewed policy ran: its hash, its git commit, and whether the file differs from it.

An auditor's first question. Read once per run, before the first request, from the
git work tree holding the policy (git itself answers; no git, or no work tree, is
said plainly rather than guessed).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TypedDict

from archiver import __version__

_GIT_TIMEOUT_SECONDS = 10


class PolicyProvenance(TypedDict):
    sha256: str
    git_commit: str | None  # the commit HEAD names in the policy's work tree; None outside git
    # True: the file differs from that commit (edited, or not committed at all);
    # None: not known (no git).
    git_dirty: bool | None
    archiver_version: str


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True,
            timeout=_GIT_TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def policy_provenance(path: Path | None, sha256: str) -> PolicyProvenance:
    """Provenance of the policy file at ``path`` whose bytes hash to ``sha256``."""
    commit: str | None = None
    dirty: bool | None = None
    if path is not None and path.is_file():
        folder = path.resolve().parent
        head = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
        if head is not None and head.returncode == 0 and head.stdout.strip():
            commit = head.stdout.strip()
            # `ls-files --error-unmatch` fails for a file git does not track: an
            # uncommitted policy differs from every commit.
            tracked = _git(folder, "ls-files", "--error-unmatch", "--", path.name)
            if tracked is None or tracked.returncode != 0:
                dirty = True
            else:
                diff = _git(folder, "diff", "--quiet", "HEAD", "--", path.name)
                dirty = None if diff is None or diff.returncode not in (0, 1) else (
                    diff.returncode == 1
                )
    return {
        "sha256": sha256,
        "git_commit": commit,
        "git_dirty": dirty,
        "archiver_version": __version__,
    }
