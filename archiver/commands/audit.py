"""`archiver audit`: inspect the tamper-evident audit log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from archiver.audit import VerifyResult, digest, verify_file
from archiver.audit.receipt import LastLine
from archiver.commands._paths import PathParam
from archiver.commands._state import STATE
from archiver.errors import EXIT_FAILED, ArchiverError, UsageError
from archiver.state.location import StateLocation
from archiver.state.store import Store


@click.group(name="audit")
def command() -> None:
    """Inspect the audit log a policy's `audit_log` sink writes.

    Each line of the log is a JSON record chained to the line before it by a
    SHA-256 hash, so edited, deleted, inserted or reordered lines show up.
    """


@command.command(name="verify")
@click.argument("file", type=PathParam(reads=True, path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line, `FILE:LINE: message` when broken; json: one object for scripts.",
)
@click.option(
    "--state",
    "state_dir",
    type=STATE,
    help="Also check the log ends where the state store of these runs (a folder or a "
    "postgresql:// URL) recorded its last line (detects lines cut off the end).",
)
@click.option(
    "--public-key",
    "public_key",
    type=PathParam(reads=True, path_type=Path, dir_okay=False, exists=True),
    help="Also check the signed digests in FILE.digests/ with this Ed25519 public key (PEM): "
    "catches a cut tail, a consistent rewrite of the chain, a deleted or a replaced digest.",
)
def verify(file: Path, fmt: str, state_dir: StateLocation | None, public_key: Path | None) -> None:
    """Check the hash chain of the audit log FILE and name the first broken line.

    Reads the file line by line without changing it. Exit 0 when every line
    is intact and follows the one before, 1 when the chain is broken (edited,
    deleted, inserted or reordered lines, or a torn last line), 2 when FILE
    does not exist, 75 when another process has held the log's lock for 10
    seconds (an append takes milliseconds; try again later).

    Lines cut off the end of the log cannot be detected from the file alone:
    give --state (the runs' state folder, which records the seq and hash of
    every line it wrote), or compare the last seq and hash printed here with a
    copy kept elsewhere.

    With --public-key, the digests every run signed (ARCHIVER_SIGNING_KEY) are
    checked too, offline: each signature, their chain, and that the log still
    holds the lines they signed, with the same hashes. That also catches what
    the state folder cannot: a rewrite of both the log and the store.
    """
    if not file.exists():
        raise UsageError(f"{file}: no such audit log")
    if not file.is_file():
        raise UsageError(f"{file}: not a file")
    # The store is read before the log: a run appending meanwhile records a line in the
    # store only once the line is in the file, so the log read next holds every line the
    # store knows of. Read the other way round, a line appended in between would look
    # cut off. An error of the store is raised only once the log's own chain is intact.
    checkpoint: LastLine | ArchiverError | None = None
    if state_dir is not None:
        try:
            checkpoint = store_checkpoint(file, state_dir)
        except ArchiverError as err:
            checkpoint = err
    try:
        result = verify_file(file)
    except OSError as err:
        raise UsageError(f"{file}: cannot read: {err.strerror}") from err
    if result.ok and state_dir is not None:
        if isinstance(checkpoint, ArchiverError):
            raise checkpoint
        result = check_against_store(file, result, checkpoint)
    if result.ok and public_key is not None:
        result = check_digests(file, result, public_key)
    if fmt == "json":
        payload = {
            "file": str(file),
            "ok": result.ok,
            "lines": result.lines,
            "first_bad_line": result.first_bad_line,
            "message": result.message,
        }
        click.echo(json.dumps(payload))
    elif result.ok:
        click.echo(f"{file}: OK, {result.message}")
    elif result.first_bad_line is None:
        click.echo(f"{file}: {result.message}")
    else:
        click.echo(f"{file}:{result.first_bad_line}: {result.message}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def check_digests(file: Path, result: VerifyResult, public_key: Path) -> VerifyResult:
    """An intact chain must also match every signed digest, and be covered by them."""
    count, problems, first_bad = digest.verify_log(file, digest.load_public_key(public_key))
    if problems:
        # A line a signed digest contradicts is named like any broken line; a problem of the
        # digests alone (deleted, replaced, another log's) names none.
        lines = result.lines if first_bad is None else first_bad - 1
        return VerifyResult(False, lines, first_bad, "; ".join(problems))
    return VerifyResult(True, result.lines, None,
                        result.message + f"; {count} signed digest(s) verified")


def store_checkpoint(file: Path, state_dir: StateLocation) -> LastLine | None:
    """The seq and hash of the last line of ``file`` the state store recorded written."""
    store = Store.open_existing(state_dir, read_only=True)
    try:
        return store.events.audit_checkpoint(file)
    finally:
        store.close()


def check_against_store(
    file: Path, result: VerifyResult, checkpoint: LastLine | None
) -> VerifyResult:
    """An intact chain must also reach the last line the state store saw written
    (``checkpoint``, read before the log)."""
    if checkpoint is None:
        # Receipts name the log where runs wrote it: a copy, a moved log or another
        # store's is not checked, and an OK must not read as if it were.
        return VerifyResult(
            True, result.lines, None,
            result.message + "; the state store has no record of writing this file "
            f"({file.resolve()}), so whether lines were cut off its end is not checked",
        )
    seq, digest = checkpoint
    if result.lines < seq:
        return VerifyResult(
            False, result.lines, result.lines + 1,
            f"the log ends at seq {result.lines} but the state store recorded seq {seq} "
            "written: lines were cut off the end",
        )
    found = _hash_at(file, seq)
    if found != digest:
        return VerifyResult(
            False, seq - 1, seq,
            f"seq {seq} has hash {found}, the state store recorded {digest}: "
            "the log was rewritten from here",
        )
    return VerifyResult(True, result.lines, None, result.message + "; matches the state store")


def _hash_at(file: Path, seq: int) -> str | None:
    """The ``hash`` of the line numbered ``seq`` (line n of an intact log has seq n)."""
    with file.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == seq:
                value = json.loads(raw).get("hash")
                return value if isinstance(value, str) else None
    return None
