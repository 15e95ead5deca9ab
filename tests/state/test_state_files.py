"""The state folder is archiver's own: 0700, its files 0600, never opened through a link,
never another user's; SQLite faults become one-line storage errors naming the store."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from archiver.errors import EXIT_CONFIG, EXIT_STORAGE, StorageError, UnsafeFileError
from archiver.state.files import write_output
from archiver.state.lock import RunLock
from archiver.state.store import Store

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


@contextmanager
def state(folder: Path) -> Iterator[Store]:
    """The state folder as a run opens it: the lock, then the store."""
    with RunLock(folder / "run.lock"):
        store = Store(folder)
        try:
            yield store
        finally:
            store.close()


def write(store: Store) -> None:
    """Something committed, so the WAL has frames."""
    with store.tx() as db:
        db.execute("INSERT INTO store_meta (key, value) VALUES ('test', 'kept')")


def open_state(folder: Path) -> None:
    with state(folder):
        pass


def modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in folder.iterdir()}


def test_a_new_state_folder_and_its_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    previous = os.umask(0)
    try:
        with state(folder) as store:
            write(store)
            found = modes(folder)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {"run.lock", "state.db", "state.db-wal", "state.db-shm"} <= set(found)
    assert set(found.values()) == {0o600}, found


def test_loose_modes_left_by_an_earlier_version_are_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with state(folder) as store:
        write(store)
    folder.chmod(0o755)
    for name in ("run.lock", "state.db"):
        (folder / name).chmod(0o644)
    with state(folder) as store:
        assert store.query("SELECT value FROM store_meta WHERE key = 'test'") == [("kept",)]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert set(modes(folder).values()) == {0o600}


@pytest.mark.parametrize(
    "name", ["run.lock", "state.db", "state.db-wal", "state.db-shm", "state.db-journal"]
)
def test_a_link_in_the_state_folder_is_refused_and_its_target_untouched(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    target = tmp_path / "home" / ".bashrc"
    target.parent.mkdir()
    target.write_text("export PATH=$HOME/bin:$PATH\n")
    (folder / name).symlink_to(target)
    with pytest.raises(UnsafeFileError, match=rf"refusing the .* {folder / name}: it is a symbolic link"):
        open_state(folder)
    assert target.read_text() == "export PATH=$HOME/bin:$PATH\n"
    assert UnsafeFileError("").exit_code == EXIT_CONFIG


def test_a_linked_state_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "state").symlink_to(elsewhere)
    with pytest.raises(UnsafeFileError, match=r"state folder .* it is a symbolic link"):
        open_state(tmp_path / "state")
    assert list(elsewhere.iterdir()) == []


def test_a_shared_folder_is_not_made_a_state_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(UnsafeFileError, match="sticky bit"):
        Store(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert list(shared.iterdir()) == []


@as_root
@pytest.mark.parametrize("name", [".", "state.db", "run.lock"])
def test_another_users_state_folder_or_file_is_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "state"
    with state(folder) as store:
        write(store)
    os.chown(folder / name, 65534, 65534)
    with pytest.raises(UnsafeFileError, match="belongs to another user"):
        open_state(folder)


def test_a_state_folder_that_cannot_be_made_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match=f"the state folder {blocker / 'state'}: ") as caught:
        open_state(blocker / "state")
    assert caught.value.exit_code == EXIT_STORAGE
    # Named as what is in the way, not as mkdir's "File exists".
    assert f"{blocker} is a file, not a folder; choose another path" in str(caught.value)
    assert "File exists" not in str(caught.value)


def test_a_full_store_is_a_storage_error_naming_it_and_stays_usable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    pages = store._conn.backend.db.execute("PRAGMA page_count").fetchone()[0]
    store._conn.backend.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is all but full
    big = [(f"e{n}", "audit_log#0", "batch_archived", "x" * 4000) for n in range(20)]
    with pytest.raises(StorageError, match=rf"the state store {tmp_path / 'state.db'}: .*full.*free space"):
        store.events.enqueue(big)
    assert store.events.summary() == {}, "rolled back, and the store still answers"
    store.events.enqueue(big[:1])
    assert store.events.summary() == {"audit_log#0": {"pending": 1}}
    store.close()


def _read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def read() -> None:
        with path.open("rb") as fifo:
            got.append(fifo.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, got


def test_an_output_path_that_is_a_pipe_or_device_is_written_in_place_not_replaced(
    tmp_path: Path,
) -> None:
    # `--report /dev/null` or a named pipe: renaming a temporary file over it would put a
    # regular file where the device or pipe was (as root, /dev/null itself).
    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    reader, got = _read_fifo(fifo)
    write_output(fifo, b'{"a": 1}\n')
    reader.join(timeout=10)
    assert got == [b'{"a": 1}\n']
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["report.pipe"]


def test_an_output_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("old")
    write_output(out, b"new\n")
    assert out.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["report.json"]
