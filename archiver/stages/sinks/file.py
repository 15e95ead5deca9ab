"""Sink ``file``: the archive on disk, one ``jsonl.gz`` file per archived batch.

``path`` is a folder template with ``{campaign}`` and ``{date}`` (the UTC day the
batch's file was first written), relative to the policy file and confined to the
policy's repository like every path a policy names. A batch's file is named after
the batch (``BATCH_ID.jsonl.gz``; a batch's id follows from its attempts), written
to a temporary name in its folder, fsynced, then renamed, owner-only (0600): a
half-written file never stands under the final name. A batch whose file exists (a
run died after writing it, before recording the batch) is found, under any date,
and not written again; its digest is read from the file.

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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.engine import failpoints
from archiver.engine.building import BuildContext
from archiver.errors import ConfigError, TemplateError
from archiver.policy.model import FileSink, Policy
from archiver.state.files import fsync_dir, storage_error
from archiver.templates import CompiledTemplate, load_template

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
        found = self._existing(campaign_id, name)
        if found is not None:
            data = self._read(found)
            return self._facts(found, data, _count(found, data))
        folder = self._folder(campaign_id, datetime.now(UTC).date().isoformat())
        data = gzip.compress(self._lines(campaign_id, batch_id, records), mtime=0)
        final = folder / name
        self._write(folder, final, data)
        failpoints.hit("archive_written")  # the file is there; its batch is not recorded yet
        return self._facts(final, data, len(records))

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
        written = self.pattern.format(campaign=campaign_id, date=date)
        return self.policy.resolve(written, what="archive folder")

    def _existing(self, campaign_id: str, name: str) -> Path | None:
        if "{date}" not in self.pattern:
            candidate = self._folder(campaign_id, "") / name
            return candidate if candidate.exists() else None
        wildcard = glob.escape(self.pattern.replace("{date}", "\0")).replace("\0", "*")
        wildcard = wildcard.replace("{campaign}", glob.escape(campaign_id))
        for match in sorted(glob.glob(os.path.join(glob.escape(str(self.base)), wildcard, name))):
            relative = os.path.relpath(match, self.base)
            return self.policy.resolve(relative, what="archive file")
        return None

    def _write(self, folder: Path, final: Path, data: bytes) -> None:
        temporary = folder / f".{final.name}.tmp"
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


def _count(path: Path, data: bytes) -> int:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            return sum(1 for _ in unpacked)
    except (OSError, EOFError) as err:
        raise ConfigError(
            f"archive file {path} is not a whole gzip file ({err}); move it aside to have "
            "the batch written again"
        ) from err
