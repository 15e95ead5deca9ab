"""Evidence bundles: everything an auditor needs to check one run, offline, in one file.

A bundle holds the run report, the policy text that ran (and its approval, when one
was written), and for each of the policy's audit logs the lines the run's signed
digest covers, that digest and the digest before it (the anchor). ``verify`` needs
nothing else but the public key: no state store, no network, no repository. It checks:

- every audit line's own hash, and that the lines chain from the anchor's last hash
  to the run digest's last hash, seq by seq;
- both digests' Ed25519 signatures, and that the run digest follows the anchor;
- that the policy text hashes to the SHA-256 the report and the audit lines name;
- that the approval, when bundled, approves that hash;
- that the report's counts are the ones the run's signed ``run_finished`` line states.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from archiver import jsonsafe
from archiver.audit import digest
from archiver.audit.chain import GENESIS_HASH, check_line
from archiver.errors import ConfigError
from archiver.governance import approval

FORMAT = "archiver-evidence/1"
_GIT_TIMEOUT_SECONDS = 10
_MAX_BUNDLE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Check:
    """One part of a bundle and what verifying it found."""

    part: str
    ok: bool
    detail: str


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _policy_bytes(report: dict[str, Any]) -> tuple[bytes, str]:
    """The policy text that ran: the file if it still hashes the same, else the file as
    of the commit the run recorded. ConfigError when neither is that text."""
    policy = report["policy"]
    path = Path(policy["path"]) if policy.get("path") else None
    wanted = policy["sha256"]
    if path is not None and path.is_file():
        data = path.read_bytes()
        if _sha(data) == wanted:
            return data, "the policy file"
    commit = policy.get("git_commit")
    if path is not None and commit:
        try:
            top = subprocess.run(
                ["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                capture_output=True, text=True, timeout=_GIT_TIMEOUT_SECONDS, check=False,
            ).stdout.strip()
            relative = path.resolve().relative_to(Path(top).resolve()).as_posix()
            shown = subprocess.run(
                ["git", "-C", top, "show", f"{commit}:{relative}"],
                capture_output=True, timeout=_GIT_TIMEOUT_SECONDS, check=False,
            )
        except (OSError, ValueError, subprocess.SubprocessError):
            shown = None
        if shown is not None and shown.returncode == 0 and _sha(shown.stdout) == wanted:
            return shown.stdout, f"git commit {commit[:12]}"
    raise ConfigError(
        f"the policy text that ran (sha256 {wanted}) is neither in {path} nor in its "
        "recorded git commit: the bundle would not hold what ran"
    )


def _approval_text(policy_path: Path | None, sha256: str) -> str | None:
    if policy_path is None:
        return None
    file = approval.approval_path(policy_path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError:
        return None
    found = approval.read(file)
    return text if found is not None and found.sha256 == sha256 else None


def _audit_part(log_path: Path, run_id: str) -> dict[str, Any]:
    digests, problems = digest.read_digests(digest.digest_folder(log_path))
    if problems:
        raise ConfigError(f"{log_path}: {problems[0]}")
    ordered = sorted(digests, key=lambda d: d.number)
    mine = [d for d in ordered if d.run_id == run_id]
    if not mine:
        raise ConfigError(
            f"run {run_id} has no signed digest of {log_path} (was ARCHIVER_SIGNING_KEY set "
            "for it?): without one, nothing in a bundle could be trusted offline"
        )
    run_digest = mine[-1]
    before = [d for d in ordered if d.number < run_digest.number]
    anchor = before[-1] if before else None
    first = anchor.last_seq + 1 if anchor else 1
    lines: list[str] = []
    with log_path.open("rb") as f:
        for seq, raw in enumerate(f, start=1):
            if seq > run_digest.last_seq:
                break
            if seq >= first:
                lines.append(raw.decode("utf-8").rstrip("\n"))
    return {
        "log": log_path.name,
        "lines": lines,
        "digest": run_digest.as_json(),
        "anchor": anchor.as_json() if anchor else None,
    }


def build(
    report: dict[str, Any], audit_logs: list[Path], *, created_at: str,
    holds: Sequence[tuple[str, Path]] = (),
) -> dict[str, Any]:
    """The bundle of the run ``report`` describes, with its audit logs' signed lines and
    the policy's hold files (as the policy spells them, and where they are)."""
    data, origin = _policy_bytes(report)
    policy_path = Path(report["policy"]["path"]) if report["policy"].get("path") else None
    return {
        "format": FORMAT,
        "run_id": report["run_id"],
        "created_at": created_at,
        "report": report,
        "policy": {
            "file": policy_path.name if policy_path else None,
            "from": origin,
            "sha256": _sha(data),
            "text": data.decode("utf-8"),
        },
        "approval": _approval_text(policy_path, report["policy"]["sha256"]),
        # The hold files as they are when the bundle is made; a hold changed since the
        # run shows here as it is now (their cases are in the run's held reasons).
        "holds": [{"file": shown, "text": path.read_text(encoding="utf-8")}
                  for shown, path in holds],
        "audit": [_audit_part(path, report["run_id"]) for path in audit_logs],
    }


def write(bundle: dict[str, Any], out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        raise ConfigError(f"cannot write {out}: {err.strerror}") from err


def read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_BUNDLE_BYTES:
            raise ConfigError(f"{path} is too large to be an evidence bundle")
        bundle = jsonsafe.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{path} is not an evidence bundle: {err}") from err
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an evidence bundle ({FORMAT})")
    return bundle


def verify(bundle: dict[str, Any], public: Ed25519PublicKey) -> list[Check]:
    """Every check of the bundle, in the order an auditor reads them."""
    checks: list[Check] = []
    report = bundle.get("report") or {}
    run_id = bundle.get("run_id")
    policy = bundle.get("policy") or {}
    text = str(policy.get("text", "")).encode("utf-8")
    sha = _sha(text)
    reported = (report.get("policy") or {}).get("sha256")
    checks.append(Check(
        "policy", sha == reported and report.get("run_id") == run_id,
        f"the policy text hashes to {sha[:12]}, the report names {str(reported)[:12]}"
        if sha != reported else f"the policy text is the one the report names ({sha[:12]})",
    ))
    checks.append(_check_approval(bundle.get("approval"), sha))
    finished: dict[str, Any] | None = None
    for part in bundle.get("audit") or []:
        check, lines = _check_audit(part, public, sha)
        checks.append(check)
        for line in lines:
            if line.get("run_id") == run_id and line.get("event") == "run_finished":
                finished = line
    checks.append(_check_counts(report, finished))
    checks.append(_check_holds(bundle.get("holds") or []))
    return checks


def _check_holds(holds: list[Any]) -> Check:
    from archiver.governance.holds import HoldFile

    cases = []
    for hold in holds:
        try:
            parsed = HoldFile.model_validate(yaml.safe_load(str(hold.get("text", ""))))
        except (yaml.YAMLError, ValueError, AttributeError):
            return Check("holds", False, f"hold file {hold.get('file')} does not parse")
        cases.append(f"{parsed.case} ({hold.get('file')}, placed by {parsed.placed_by})")
    if not cases:
        return Check("holds", True, "no hold files")
    return Check("holds", True, "; ".join(cases))


def _check_approval(text: object, sha: str) -> Check:
    if text is None:
        return Check("approval", True, "no approval bundled (none was needed or written)")
    try:
        data = yaml.safe_load(str(text))
    except yaml.YAMLError:
        return Check("approval", False, "the approval is not YAML")
    if not isinstance(data, dict) or data.get("sha256") != sha:
        return Check("approval", False, "the approval does not approve the bundled policy text")
    return Check("approval", True,
                 f"approved by {data.get('approved_by')} at {data.get('approved_at')}")


def _line_sha(line: dict[str, Any]) -> object:
    policy = line.get("policy")
    if isinstance(policy, dict) and "sha256" in policy:
        return policy["sha256"]
    return line.get("policy_sha256")


def _check_audit(
    part: dict[str, Any], public: Ed25519PublicKey, policy_sha: str
) -> tuple[Check, list[dict[str, Any]]]:
    name = f"audit log {part.get('log')}"
    found: dict[str, digest.Digest | None] = {}
    for key in ("anchor", "digest"):
        raw = part.get(key)
        if raw is None:
            found[key] = None
            continue
        parsed = digest.parse(json.dumps(raw).encode(), f"{key} of {part.get('log')}")
        if isinstance(parsed, str):
            return Check(name, False, f"the {key} is not a digest: {parsed}"), []
        found[key] = parsed
    run_digest, anchor = found["digest"], found["anchor"]
    if run_digest is None:
        return Check(name, False, "no run digest bundled"), []
    for d in (anchor, run_digest):
        if d is not None and not digest.signature_ok(d, public):
            return Check(name, False, f"the {d.file} does not verify with this public key: "
                                      "it was replaced or edited"), []
    if anchor is not None and run_digest.previous_signature != anchor.signature:
        return Check(name, False, "the run digest does not follow the bundled anchor"), []
    if anchor is None and run_digest.previous_signature is not None:
        return Check(name, False, "the run digest follows a digest the bundle lacks"), []
    prev_hash = anchor.last_hash if anchor else GENESIS_HASH
    seq = anchor.last_seq if anchor else 0
    lines: list[dict[str, Any]] = []
    for raw in part.get("lines") or []:
        checked = check_line(str(raw).encode("utf-8"))
        if isinstance(checked, str):
            return Check(name, False, f"line {seq + 1}: {checked}"), []
        line, claimed_prev = checked
        if line.seq != seq + 1 or claimed_prev != prev_hash:
            return Check(name, False, f"line {seq + 1} does not follow the line before it: "
                                      "lines were removed, inserted or replaced"), []
        seq, prev_hash = line.seq, line.hash
        lines.append(json.loads(raw))
    if seq != run_digest.last_seq or prev_hash != run_digest.last_hash:
        return Check(name, False, f"the lines end at seq {seq}, hash {prev_hash[:12]}; the signed "
                                  f"digest names seq {run_digest.last_seq}, hash "
                                  f"{run_digest.last_hash[:12]}"), []
    shas = {_line_sha(line) for line in lines} - {None}
    if shas and shas != {policy_sha}:
        return Check(name, False, "audit lines name another policy text than the bundled one"), []
    return Check(name, True, f"{len(lines)} lines chain to the signed digest of run "
                             f"{run_digest.run_id} (seq {run_digest.last_seq})"), lines


def _check_counts(report: dict[str, Any], finished: dict[str, Any] | None) -> Check:
    if finished is None:
        return Check("report", False, "no signed run_finished line of this run in the bundle")
    counts = finished.get("counts")
    totals = report.get("totals")
    if not isinstance(counts, dict) or not isinstance(totals, dict):
        return Check("report", False, "no counts to compare in the run_finished line")
    differ = sorted(k for k, v in counts.items() if totals.get(k) != v)
    if differ:
        return Check("report", False, "the report's counts differ from the signed run_finished "
                                      f"line: {', '.join(differ)}")
    return Check("report", True, "the report's counts are the signed run_finished line's")
