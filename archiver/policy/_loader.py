"""The pipeline: read, parse, schema, build the typed policy, semantic and template checks.

Each step runs only when the ones before it found nothing, so every diagnostic is about
the file as written and none is an echo of an earlier one; within a step, every problem
of the file is reported in one pass.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from archiver.errors import Diagnostic, PolicyError
from archiver.policy import _codes as codes
from archiver.policy import _schema, _semantic, _template_check
from archiver.policy._document import Document, Positions
from archiver.policy._yaml import parse
from archiver.policy.files import POLICY_SUFFIXES, TEST_SUFFIXES, link_problem, policy_files
from archiver.policy.model import Policy
from archiver.policy.paths import repository_root

MAX_BYTES = 1024 * 1024
STDIN = "-"
__all__ = ["POLICY_SUFFIXES", "TEST_SUFFIXES", "check_file", "check_paths", "folder_results",
           "load_policy", "load_policy_text", "policy_files"]


def load_policy(path: Path | str) -> Policy:
    """The policy at ``path`` (``-`` reads stdin); raises PolicyError with every problem."""
    policy, diagnostics = _load(path)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy


def load_policy_text(text: str, *, name: str, base_dir: Path) -> Policy:
    """A policy given as text; ``name`` labels diagnostics, paths resolve against ``base_dir``
    and must stay inside its repository."""
    policy, diagnostics = _check_bytes(text.encode("utf-8"), name, base_dir, base_dir)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy


def check_file(path: Path | str) -> list[Diagnostic]:
    """Every problem of the policy at ``path``; empty when it is valid. Never raises for it."""
    return _load(path)[1]


def check_paths(paths: Sequence[Path]) -> dict[Path, list[Diagnostic]]:
    """Problems by policy file; a folder stands for the ``*.yaml``/``*.yml`` policies
    anywhere below it (hidden folders such as ``.git`` left out).

    Policy test files (``*.test.yaml``) beside policies are not policies and are left out.
    """
    results: dict[Path, list[Diagnostic]] = {}
    for path in paths:
        if not path.is_dir():
            results[path] = check_file(path)
            continue
        found = folder_results(path)
        if not found:
            results[path] = [Diagnostic(str(path), 1, 1, codes.NO_POLICIES,
                                        "no policy files (*.yaml, *.yml) in this folder "
                                        "or below it")]
        results.update(found)
    return results


def folder_results(folder: Path) -> dict[Path, list[Diagnostic]]:
    """The policies anywhere below ``folder``, each with its problems (none when valid).

    A symlink that does not lead to a policy of the repository is a problem, unread
    (``link_problem``). A file that a valid policy found here lists under ``holds:`` is
    that policy's hold file, checked as one with it, not a policy: it is left out.
    """
    found: dict[Path, list[Diagnostic]] = {}
    holds: set[Path] = set()
    for file in policy_files(folder):
        refused = link_problem(file, folder)
        if refused:
            found[file] = [Diagnostic(str(file), 1, 1, codes.LINK_NOT_READ, refused)]
            continue
        policy, found[file] = _load(file)
        if policy is not None:
            holds.update(policy.resolve(h, what="hold file") for h in policy.holds)
    return {file: problems for file, problems in found.items()
            if Path(os.path.realpath(file)) not in holds}


def _load(path: Path | str) -> tuple[Policy | None, list[Diagnostic]]:
    if str(path) == STDIN:
        raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        return _check_bytes(raw, "<stdin>", Path.cwd(), Path())
    path = Path(path)
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, [_too_large(file)]
        # At most one byte past the limit, whatever the size says: a device or a pipe
        # (/dev/zero, a FIFO) has no size and no end.
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, [Diagnostic(file, 1, 1, codes.UNREADABLE, "no such file")]
    except IsADirectoryError:
        return None, [Diagnostic(file, 1, 1, codes.UNREADABLE, "is a folder, not a policy file")]
    except OSError as err:
        return None, [Diagnostic(file, 1, 1, codes.UNREADABLE, f"cannot read: {err.strerror}")]
    origin = path.resolve()
    # Paths resolve against the folder of the file itself (a symlinked policy's target),
    # as the run resolves them (Policy.resolve).
    return _check_bytes(raw, file, origin.parent, path.parent, origin=origin)


def _too_large(file: str) -> Diagnostic:
    return Diagnostic(file, 1, 1, codes.FILE_TOO_LARGE,
                      f"file is larger than {MAX_BYTES // 1024} KiB; a policy is never that long")


def _check_bytes(
    raw: bytes, file: str, base_dir: Path, display_dir: Path, *, origin: Path | None = None
) -> tuple[Policy | None, list[Diagnostic]]:
    if len(raw) > MAX_BYTES:
        return None, [_too_large(file)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        return None, [Diagnostic(file, line, 1, codes.UNREADABLE, "not UTF-8 text")]
    parsed = parse(text, file)
    if isinstance(parsed, list):
        return None, parsed
    base_dir = base_dir.absolute()
    root = repository_root(base_dir)
    doc = Document(file, parsed.positions, base_dir, display_dir, root)
    diagnostics = _schema.check(parsed.data, doc)
    if diagnostics:
        return None, diagnostics
    try:
        policy = Policy.model_validate(parsed.data)
    except ValidationError as err:  # the schema should have caught it; say where anyway
        return None, _model_errors(err, doc)
    diagnostics = _semantic.check(policy, doc) + _template_check.check(policy, doc)
    if diagnostics:
        return None, diagnostics
    if origin is None:
        # Text and stdin have no file; a name inside base_dir makes Policy.resolve use it.
        origin = base_dir / (Path(file).name or "policy.yaml")
    return policy.model_copy(
        update={"path": origin, "root": root, "sha256": hashlib.sha256(raw).hexdigest()}
    ), []


def _model_errors(err: ValidationError, doc: Document) -> list[Diagnostic]:
    out = []
    positions: Positions = doc.positions
    for item in err.errors():
        # Union members add their class name to the location; keep only real path parts.
        path = tuple(p for p in item["loc"] if isinstance(p, int) or (
            isinstance(p, str) and p[:1].islower()))
        known = next((path[:n] for n in range(len(path), -1, -1)
                      if path[:n] in positions.values), ())
        out.append(doc.at_value(known, codes.SCHEMA_OTHER, f"{item['msg']}"))
    return out
