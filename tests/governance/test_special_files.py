"""Files a policy, a neighbouring path or a variable names, when they are not files.

A hold file, an approval or a signing key that is a named pipe with no writer would
block its open forever, and a device (/dev/zero) would never end: each is refused in
one line saying what it is, at once."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archiver.audit.digest import load_private_key
from archiver.errors import ConfigError
from archiver.governance import approval
from archiver.governance.holds import HoldSet
from archiver.regular_file import NotARegularFile, read_regular
from tests.support import REPO, run_cli


def ends_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; the error it raised (None if none). Fails the test when
    it has not ended in time (a blocked open would never end)."""
    caught: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as err:  # handed to the test
            caught.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return caught[0] if caught else None


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    err = ends_within(10, lambda: read_regular(fifo, 1024))
    assert isinstance(err, NotARegularFile)
    assert err.strerror == "it is a named pipe (FIFO), not a regular file"


def test_a_device_is_refused_not_read_to_its_end() -> None:
    err = ends_within(10, lambda: read_regular(Path("/dev/zero"), 1024))
    assert isinstance(err, NotARegularFile)
    assert err.strerror == "it is a character device, not a regular file"


def test_a_socket_is_refused_as_a_socket(tmp_path: Path) -> None:
    # Opening a Unix socket fails in the kernel (ENXIO, "No such device or address"),
    # which says nothing a person can act on.
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        err = ends_within(10, lambda: read_regular(path, 1024))
    assert isinstance(err, NotARegularFile)
    assert err.strerror == "it is a socket, not a regular file"
    assert err.filename == str(path)


def test_a_hold_file_that_is_a_socket_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "LIT-2.yaml"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        err = ends_within(10, lambda: HoldSet([(path, "holds/LIT-2.yaml")]))
    assert isinstance(err, ConfigError)
    assert str(err) == "cannot read hold file holds/LIT-2.yaml: it is a socket, not a regular file"


def test_a_regular_file_is_read_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    assert read_regular(path, 4096) == b"x" * 4097
    assert read_regular(path, 10_000) == b"x" * 5000


def test_a_hold_file_that_is_a_named_pipe_is_a_config_error(fifo: Path) -> None:
    err = ends_within(10, lambda: HoldSet([(fifo, "holds/pipe.yaml")]))
    assert isinstance(err, ConfigError)
    assert str(err) == (
        "cannot read hold file holds/pipe.yaml: it is a named pipe (FIFO), not a regular file"
    )


def test_an_approval_that_is_a_named_pipe_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    os.mkfifo(approval.approval_path(policy))
    err = ends_within(10, lambda: approval.state(policy, "0" * 64))
    assert isinstance(err, ConfigError)
    assert "it is a named pipe (FIFO), not a regular file" in str(err)


@pytest.mark.parametrize("key", ["fifo", "/dev/zero"])
def test_a_signing_key_that_is_not_a_file_is_refused(fifo: Path, key: str) -> None:
    path = fifo if key == "fifo" else Path(key)
    err = ends_within(10, lambda: load_private_key(path))
    assert isinstance(err, ConfigError)
    kind = "a named pipe (FIFO)" if key == "fifo" else "a character device"
    assert str(err) == f"cannot read the signing key {path}: it is {kind}, not a regular file"


def validate_demo_with_holds(tmp_path: Path, holds: str, make: Callable[[Path], None]
                             ) -> tuple[Path, int, list[str]]:
    """`archiver validate` on a copy of the demo whose last line is ``holds: HOLDS``,
    once ``make`` made what it needs in the copy's folder: the policy, that line's
    number and the output's lines (exit 78 checked)."""
    folder = tmp_path / "examples"
    shutil.copytree(REPO / "examples", folder,
                    ignore=shutil.ignore_patterns(".archiver", "archive", "audit", "holds"))
    make(folder)
    policy = folder / "demo.yaml"
    policy.write_text(policy.read_text() + f"\nholds: {holds}\n")
    line = len(policy.read_text().splitlines())
    result = run_cli(["validate", str(policy)], dict(os.environ), timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 78, out
    return policy, line, out.splitlines()


def test_validate_refuses_a_policy_whose_hold_file_is_a_named_pipe(tmp_path: Path) -> None:
    def make(folder: Path) -> None:
        (folder / "holds").mkdir()
        os.mkfifo(folder / "holds" / "LIT-1.yaml")

    policy, line, out = validate_demo_with_holds(tmp_path, "[holds/LIT-1.yaml]", make)
    hold = policy.parent / "holds" / "LIT-1.yaml"
    assert out == [
        f"{policy}:{line}:9: V023 cannot read hold file {hold}: it is a named pipe (FIFO), not a"
        " regular file",
        "1 error in 1 of 1 policy",
    ], out


def test_validate_refuses_a_hold_file_name_with_a_nul_character(tmp_path: Path) -> None:
    policy, line, out = validate_demo_with_holds(tmp_path, '["a\\0b.yaml"]', lambda _: None)
    assert out == [
        f"{policy}:{line}:9: V014 hold file 'a\\x00b.yaml' contains a NUL character, which no"
        " file name can hold",
        "1 error in 1 of 1 policy",
    ], out
