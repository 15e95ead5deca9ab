"""Sink ``file``: the archive on disk, one ``jsonl.gz`` file per archived batch.

``path`` is a folder template with ``{campaign}`` and ``{date}`` (the UTC day the
batch's file was first written), relative to the policy file and confined to the
policy's repository like every path a policy names. A batch's file is named after
the batch (``BATCH_ID.jsonl.gz``; a batch's id follows from its attempts), written
to a temporary name in its folder, fsynced, then renamed, owner-only (0600): a
half-written file never stands under the final name, and once the batch's file is
written (or found), a temporary file of it that a write cut off on another day left
in that day's folder is removed. A batch whose file exists (a run died after writing
it, before recording the batch) is found, under any date, and not written again; its
digest is read from the file. A batch the next run
reconciles instead of sending again, or sends again (the tenant may refuse it in whole
or in part), has its file removed first (``discard_batch``), and so has a temporary file of it
that a write cut off left: it may hold members that batch does not archive, and the
batch's event writes it again with those it does.

Each line is one archived attempt: what its backend listed of it (a field the
backend does not provide, such as ``anonymized`` on cxone, is absent, never a
default) and its decided retention, or what the optional ``template`` renders
from ``{"record", "campaign_id", "batch_id"}`` (a JSON object). The file's SHA-256
(of its bytes on disk) and record count go into the batch's event (``files``), so
the audit line vouches for it.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from archiver.engine import failpoints
from archiver.engine.building import BuildContext
from archiver.errors import ConfigError, TemplateError
from archiver.policy import _codes as codes
from archiver.policy.paths import OutsideRepository
from archiver.stages.descriptor import CheckContext, Finding, StageType
from archiver.state.files import blocking_part, fsync_dir, storage_error
from archiver.templates import CompiledTemplate, load_template

if TYPE_CHECKING:
    from archiver.policy.model import Policy


class FileSink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["file"] = "file"
    # A folder template with {campaign} and {date}, relative to the policy file.
    path: str
    format: Literal["jsonl.gz"] = "jsonl.gz"
    template: str | None = None  # shapes each record's line; the record itself when None

PLACEHOLDERS = ("campaign", "date")
SUFFIX = ".jsonl.gz"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# A file found from an earlier run is read back to vouch for it; never more than this.
MAX_READ_BACK = 256 * 1024 * 1024


class FileArchive:
    name = "file"
    events: frozenset[str] = frozenset()  # it keeps records, not events

    def __init__(self, policy: Policy, spec: FileSink, template: CompiledTemplate | None) -> None:
        self.policy = policy
        self.pattern = spec.path
        self.template = template
        self.base = policy.path.parent if policy.path is not None else Path.cwd()
        # The outbox's name for it: the folder template it writes under.
        self.identity = f"file:{os.path.normpath(self.base / spec.path)}"

    @classmethod
    def from_spec(cls, spec: FileSink, ctx: BuildContext) -> FileArchive:
        policy = ctx.policy
        problem = pattern_problem(spec.path)
        if problem is not None:
            raise ConfigError(f"file sink path {spec.path!r}: {problem}")
        # Every campaign's folder is confined before any request: a folder refused
        # after its batch was archived would leave the batch archived and unrecorded.
        for campaign in policy.campaigns:
            policy.resolve(fill(spec.path, campaign.id, "date"), what="archive folder")
        template = (
            load_template(policy.resolve(spec.template, what="template"), "", root=policy.root)
            if spec.template
            else None
        )
        return cls(policy, spec, template)

    # -- the Sink protocol: no events --------------------------------------------
    def render(self, event: Mapping[str, Any]) -> str:
        raise AssertionError("the file sink receives no events")

    def deliver(self, event_id: str, body: str) -> str | None:
        raise AssertionError("the file sink receives no events")

    # -- ArchiveWriter -------------------------------------------------------------
    def write_batch(
        self, campaign_id: str, batch_id: str, records: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Write the batch's file once; where it is, its SHA-256 and its record count."""
        name = batch_id + SUFFIX
        folders = self._dated_folders(campaign_id)
        found = self._existing(campaign_id, name, folders)
        if found is not None:
            data = self._read(found)
            self._remove(self._temporaries(campaign_id, name, folders))
            return self._facts(found, data, _count(found, data))
        folder = self._folder(campaign_id, datetime.now(UTC).date().isoformat())
        data = gzip.compress(self._lines(campaign_id, batch_id, records), mtime=0)
        final = folder / name
        self._write(folder, final, data)
        # A write of it cut off on another day left its temporary file in that day's
        # folder: a second copy of the batch's records, which no audit line vouches for.
        # Those folders were there before the write (today's, if new, holds none: the
        # write renamed its own temporary file), so they are not looked for again.
        self._remove(self._temporaries(campaign_id, name, folders))
        failpoints.hit("archive_written")  # the file is there; its batch is not recorded yet
        return self._facts(final, data, len(records))

    def discard_batch(self, campaign_id: str, batch_id: str) -> bool:
        """Remove the batch's file, written by a run that died before recording the
        batch, when the batch is reconciled instead of sent again: what it holds is not
        what the batch archives. So is a temporary file of it that such a run was cut off
        writing (killed, or its disk full): it holds the same records."""
        name = batch_id + SUFFIX
        folders = self._dated_folders(campaign_id)
        found = self._existing(campaign_id, name, folders)
        left = ([] if found is None else [found]) + self._temporaries(campaign_id, name,
                                                                      folders)
        self._remove(left)
        return bool(left)

    @staticmethod
    def _remove(paths: Sequence[Path]) -> None:
        for path in paths:
            try:
                path.unlink()
                fsync_dir(path.parent)
            except OSError as err:
                raise storage_error("cannot remove the archive file", path, err) from err

    def _lines(
        self, campaign_id: str, batch_id: str, records: Sequence[Mapping[str, Any]]
    ) -> bytes:
        out: list[str] = []
        for record in records:
            if self.template is None:
                line: Any = {"campaign_id": campaign_id, "batch_id": batch_id, **record}
            else:
                line = self.template.render_json(
                    {"record": dict(record), "campaign_id": campaign_id, "batch_id": batch_id}
                )
                if not isinstance(line, dict):
                    raise TemplateError(
                        self.template.name, None, "a file sink line must be a JSON object"
                    )
            out.append(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        return "".join(out).encode()

    def _folder(self, campaign_id: str, date: str) -> Path:
        return self.policy.resolve(fill(self.pattern, campaign_id, date), what="archive folder")

    def _existing(self, campaign_id: str, name: str, folders: Sequence[str]) -> Path | None:
        """The campaign's file ``name``, in the first of ``folders`` (``_dated_folders``)
        that holds it."""
        if "{date}" not in self.pattern:
            candidate = self._folder(campaign_id, "") / name
            return candidate if candidate.exists() else None
        for match in _present(folders, name):
            relative = os.path.relpath(match, self.base)
            return self.policy.resolve(relative, what="archive file")
        return None

    def _dated_folders(self, campaign_id: str) -> list[str]:
        """The campaign's folders of every date, as found, in order (one listing: a batch
        looks in them for its file and for temporary files of it); none when the pattern
        has no ``{date}`` (the campaign has one folder)."""
        if "{date}" not in self.pattern:
            return []
        wildcard = glob.escape(self.pattern.replace("{date}", "\0")).replace("\0", "*")
        wildcard = wildcard.replace("{campaign}", glob.escape(campaign_id))
        # A trailing separator: folders only, as a glob with a name after them finds.
        return sorted(glob.glob(os.path.join(glob.escape(str(self.base)), wildcard, "")))

    def _temporaries(self, campaign_id: str, name: str, folders: Sequence[str]) -> list[Path]:
        """The temporary files of the file ``name`` that writes cut off left (in the
        folder of the day each was written, among ``folders``), themselves: a link is not
        followed."""
        temporary = _temporary(name)
        if "{date}" not in self.pattern:
            found = [str(self._folder(campaign_id, "") / temporary)]
        else:
            found = _present(folders, temporary)
        return [
            self.policy.resolve(os.path.relpath(os.path.dirname(match), self.base),
                                what="archive folder") / temporary
            for match in found if os.path.lexists(match)
        ]

    def _write(self, folder: Path, final: Path, data: bytes) -> None:
        temporary = folder / _temporary(final.name)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            if temporary.is_symlink() or temporary.exists():
                temporary.unlink()  # left by a run that died while writing it
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                PRIVATE_FILE,
            )
            try:
                os.fchmod(fd, PRIVATE_FILE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
            fsync_dir(folder)
        except OSError as err:
            raise storage_error("cannot write the archive file", final, err) from err

    def _read(self, path: Path) -> bytes:
        try:
            if path.is_symlink() or not path.is_file():
                raise ConfigError(f"archive file {path} is not a regular file; move it aside")
            if path.stat().st_size > MAX_READ_BACK:
                raise ConfigError(f"archive file {path} is larger than any batch's file")
            return path.read_bytes()
        except OSError as err:
            raise storage_error("cannot read the archive file", path, err) from err

    def _facts(self, path: Path, data: bytes, count: int) -> dict[str, Any]:
        return {
            "path": os.path.relpath(path, self.base),
            "sha256": hashlib.sha256(data).hexdigest(),
            "records": count,
        }


def _present(folders: Sequence[str], name: str) -> list[str]:
    """The paths of ``name`` in ``folders`` that exist, a link itself (as glob finds a
    literal name)."""
    return [path for path in (os.path.join(f, name) for f in folders) if os.path.lexists(path)]


def _temporary(name: str) -> str:
    """The name a file is written under before it is renamed to ``name``."""
    return f".{name}.tmp"


def _count(path: Path, data: bytes) -> int:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            return sum(1 for _ in unpacked)
    except (OSError, EOFError) as err:
        raise ConfigError(
            f"archive file {path} is not a whole gzip file ({err}); move it aside to have "
            "the batch written again"
        ) from err


# What a template renders each line from, in samples (a JSON object is required).
SAMPLE_LINE = {
    "record": {"id": "a-1", "contact_id": "c-1", "outcome": "Survey Taken", "duration": 61,
               "updated_at": "2024-01-01T00:00:00.000Z", "retention_days": 365},
    "campaign_id": "1001",
    "batch_id": "batch-sample",
}


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a folder template of plain ``{campaign}`` and ``{date}``
    placeholders; None when it is. Nothing else in braces is read, not even a literal
    brace: a format spec, conversion or attribute (``{campaign:.<2}``,
    ``{campaign.__class__}``) would make the folder a run writes differ from the one
    validated."""
    rest = pattern
    for name in PLACEHOLDERS:
        rest = rest.replace("{" + name + "}", "")
    if "{" not in rest and "}" not in rest:
        return None
    stray = re.search(r"\{[^{}]*\}?|\}", rest)
    shown = stray.group(0) if stray else "{"
    return (f"{shown!r} is not allowed; a folder template has no braces but the "
            "placeholders {campaign} and {date}")


def fill(pattern: str, campaign_id: str, date: str) -> str:
    """A checked folder template with its placeholders filled in (campaign ids are plain
    path segments: the policy schema allows letters, digits, ``.``, ``_`` and ``-``)."""
    return pattern.replace("{campaign}", campaign_id).replace("{date}", date)


def _check(spec: FileSink, ctx: CheckContext) -> Iterable[Finding]:
    problem = pattern_problem(spec.path)
    if problem is not None:
        yield Finding(("path",), problem, codes.BAD_PATH_TEMPLATE)
        return
    # Every campaign's folder, on a sample date: each must stay in the repository.
    for campaign in ctx.policy.campaigns or ():
        filled = fill(spec.path, campaign.id, "date")
        try:
            ctx.confine(filled, "archive folder")
        except OutsideRepository as err:
            yield Finding(("path",), str(err), codes.PATH_OUTSIDE)
            return
        # Looked at as written (a link is named as the link), from the policy's folder.
        base = ctx.confine(".", "archive folder")
        blocking = blocking_part(Path(os.path.normpath(base / filled)))
        if blocking is not None:
            # The run would fail there only after its first archive call.
            where = os.path.relpath(blocking[0], base)
            yield Finding(("path",), f"archive folder `{spec.path}` runs through "
                          f"`{ctx.show(where)}`, {blocking[1]}", codes.BAD_PATH_TEMPLATE)
            return


def _render_check(template: CompiledTemplate, spec: FileSink) -> tuple[TemplateError, str] | None:
    try:
        line = template.render_json(SAMPLE_LINE)
    except TemplateError as err:
        return err, "record"
    if not isinstance(line, dict):
        return TemplateError(template.name, None, "a file line must be a JSON object"), "record"
    return None


def _note(spec: FileSink) -> str:
    return (f"one {spec.format} file per archived batch under {spec.path}; its digest is in "
            "the batch events (a sample below)")


def _sample_files(spec: FileSink, campaign_id: str, batch_id: str, day: str) -> list[str]:
    folder = fill(spec.path, campaign_id, day).rstrip("/")
    return [f"{folder}/{batch_id}{SUFFIX}"]


STAGE = StageType(
    kind="sink", name="file", options=FileSink, factory=FileArchive.from_spec,
    summary="the archived records themselves, one jsonl.gz file per batch",
    check=_check, render_check=_render_check, note=_note, sample_files=_sample_files,
    inline=True, schema_def="file_sink",
)
