"""A policy test file is read like every file a policy or a folder walk names: at most
a byte past its limit, and never a pipe or a device, which would block or never end."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from archiver.errors import Diagnostic
from archiver.review.testfile import MAX_BYTES, UNREADABLE, load_test_file


def _load_within(seconds: float, path: Path) -> object:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(load_test_file(path)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert found, f"still reading {path} after {seconds} s"
    return found[0]


def test_a_test_file_that_is_a_named_pipe_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "p.test.yaml"
    os.mkfifo(path)
    found = _load_within(10, path)
    assert found == [Diagnostic(
        str(path), 1, 1, UNREADABLE,
        "cannot read: it is a named pipe (FIFO), not a regular file",
    )]


def test_a_test_file_past_the_limit_is_refused(tmp_path: Path) -> None:
    # Read a byte past the limit only (read_regular); the refusal is what shows here.
    path = tmp_path / "big.test.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_BYTES * 64)  # sparse
    found = _load_within(10, path)
    assert isinstance(found, list) and [d.code for d in found] == [UNREADABLE]
    assert "larger than 4 MiB" in found[0].message
