"""Evidence bundles: everything an auditor needs to check one run, offline, in one file.

A bundle holds the run report, the policy text that ran (and its approval, when one
was written), and for each of the policy's audit logs the lines the run's signed
digest covers, that digest and the digest before it (the anchor). ``verify`` needs
nothing else but the public key: no state store, no network, no repository. It checks:

- every audit line's own hash, and that the lines chain from the anchor's last hash
  to the run digest's last hash, seq by seq;
- both digests' Ed25519 signatures, and that the run digest follows the anchor;
- that the policy text hashes to the SHA-256 the report and the audit lines name;
- that the approval, when bundled, approves that hash, and its SSH signature with an
  allowed-signers file, as ``run`` checks it;
- that every report field a signed line of the run states (target, archiver version,
  policy name, hash and git commit, the counts, the campaigns, what the run archived)
  is the one the line states: one failed check per field that differs.

What no signed line states (an approval the run did not need, an unsigned approver,
the report's other fields) is reported as not vouched for (``Check.vouched``), never
as verified.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from archiver import jsonsafe
from archiver.audit import digest
from archiver.audit.chain import GENESIS_HASH, check_line, digest_folder
from archiver.engine.payloads import RECONCILED
from archiver.errors import EXIT_FAILED, ConfigError, NotApproved
from archiver.governance import approval
from archiver.state.files import write_output

FORMAT = "archiver-evidence/1"
_GIT_TIMEOUT_SECONDS = 10
_MAX_BUNDLE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Check:
    """One part of a bundle and what verifying it found."""

    part: str
    ok: bool
    detail: str
    # False: nothing signed states it; shown for the auditor, never claimed verified.
    vouched: bool = True


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
    try:
        found = approval.read(file)
    except NotApproved:  # a broken approval file approves nothing, as a missing one
        return None
    return text if found is not None and found.sha256 == sha256 else None


def _audit_part(log_path: Path, run_id: str) -> dict[str, Any]:
    digests, problems = digest.read_digests(digest_folder(log_path))
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
    try:
        write_output(out, (json.dumps(bundle, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
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


def verify(
    bundle: dict[str, Any], public: Ed25519PublicKey, *, allowed_signers: Path | None = None
) -> list[Check]:
    """Every check of the bundle, in the order an auditor reads them. ``allowed_signers``
    (git's allowed-signers format) checks the approval's SSH signature, as ``run`` does."""
    malformed = _shape_problem(bundle)
    if malformed is not None:
        # A bundle is a stranger's file until checked: a part of the wrong type is named,
        # never followed into a traceback.
        return [Check("bundle", False, f"not an evidence bundle's shape: {malformed}")]
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
    audit_checks: list[Check] = []
    run_lines: list[dict[str, Any]] = []
    for part in bundle.get("audit") or []:
        check, lines = _check_audit(part, public, sha)
        audit_checks.append(check)
        run_lines.extend(line for line in lines if line.get("run_id") == run_id)
    checks.append(_check_approval(bundle.get("approval"), sha, run_lines, allowed_signers))
    checks.extend(audit_checks)
    checks.extend(_check_report(report, run_lines))
    checks.append(_check_holds(bundle.get("holds") or []))
    return checks


# JSON's names for what json.loads gives (bool first: it is an int too).
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "true or false"), (dict, "an object"), (list, "an array"), (str, "a string"),
    (int, "a number"), (float, "a number"), (type(None), "null"),
)


def _kind(of: type) -> str:
    return next((name for t, name in _JSON_TYPES if issubclass(of, t)), of.__name__)


def _shape_problem(bundle: dict[str, Any]) -> str | None:
    """The first part of ``bundle`` whose JSON type is not the one a bundle has there (a
    missing or null part is for the checks to judge)."""
    wanted: list[tuple[str, object, type]] = [
        ("run_id", bundle.get("run_id"), str),
        ("report", bundle.get("report"), dict),
        ("policy", bundle.get("policy"), dict),
        ("approval", bundle.get("approval"), str),
        ("audit", bundle.get("audit"), list),
        ("holds", bundle.get("holds"), list),
    ]
    report, policy = bundle.get("report"), bundle.get("policy")
    if isinstance(report, dict):
        for key in ("policy", "target", "totals"):
            wanted.append((f"report.{key}", report.get(key), dict))
        campaigns = report.get("campaigns")
        wanted.append(("report.campaigns", campaigns, list))
        for i, campaign in enumerate(campaigns if isinstance(campaigns, list) else ()):
            wanted.append((f"report.campaigns[{i}]", campaign, dict))
    if isinstance(policy, dict):
        wanted.append(("policy.text", policy.get("text"), str))
    audit = bundle.get("audit")
    for i, part in enumerate(audit if isinstance(audit, list) else ()):
        wanted.append((f"audit[{i}]", part, dict))
        if isinstance(part, dict):
            lines = part.get("lines")
            wanted.append((f"audit[{i}].lines", lines, list))
            for key in ("digest", "anchor"):
                wanted.append((f"audit[{i}].{key}", part.get(key), dict))
            for j, line in enumerate(lines if isinstance(lines, list) else ()):
                wanted.append((f"audit[{i}].lines[{j}]", line, str))
    holds = bundle.get("holds")
    for i, hold in enumerate(holds if isinstance(holds, list) else ()):
        wanted.append((f"holds[{i}]", hold, dict))
    for where, value, kind in wanted:
        # A part left out (or null) is for the checks to judge; an element of an array
        # must be there.
        if (value is not None or where.endswith("]")) and not isinstance(value, kind):
            return f"`{where}` is {_kind(type(value))}, not {_kind(kind)}"
    return None


def _check_holds(holds: list[Any]) -> Check:
    from archiver.governance.holds import parse_hold_file

    cases = []
    for hold in holds:
        if not isinstance(hold, dict):
            return Check("holds", False, "a bundled hold file is not an object")
        try:
            parsed = parse_hold_file(str(hold.get("text", "")), str(hold.get("file")))
        except ConfigError as err:
            return Check("holds", False, str(err))
        cases.append(f"{parsed.case} ({hold.get('file')}, placed by {parsed.placed_by})")
    if not cases:
        return Check("holds", True, "no hold files")
    # Bundled as they were when the bundle was made: nothing signed states them.
    return Check("holds", True, "; ".join(cases) + " (as the bundle was made; not signed)",
                 vouched=False)


def _signed_target(run_lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    for line in run_lines:
        if isinstance(line.get("target"), dict):
            return dict(line["target"])
    return None


def _check_approval(
    text: object, sha: str, run_lines: list[dict[str, Any]], allowed_signers: Path | None
) -> Check:
    """The bundled approval, checked as ``run`` checks one; what the signed lines do not
    show the run relied on is reported as not vouched for."""
    target = _signed_target(run_lines)
    host = target.get("host") if target else None
    if text is None:
        if host == "embedded":
            return Check("approval", True, "no approval bundled (the signed lines show a run "
                                           "against the built-in simulator, which needs none)")
        if host is None:
            return Check("approval", True, "no approval bundled", vouched=False)
        return Check("approval", True, f"no approval bundled: the run against {host} needed "
                                       "one, and nothing here shows who gave it", vouched=False)
    try:
        found = approval.parse(str(text).encode("utf-8"), "in the bundle")
    except NotApproved as err:
        return Check("approval", False, str(err))
    if found.sha256 != sha:
        return Check("approval", False, f"sha256: the approval approves {found.sha256[:12]}, "
                                        f"the signed run ran the policy text {sha[:12]}")
    who = f"approved by {found.approved_by} at {found.approved_at}"
    signature = "unsigned"
    if allowed_signers is not None:
        problem = approval.signature_problem(found, allowed_signers)
        if problem:
            return Check("approval", False, f"{who}, but {problem}")
        signature = "signature verified"
    elif found.signature:
        signature = f"signed, not checked (no {approval.ALLOWED_SIGNERS_ENV})"
    if host == "embedded":
        return Check("approval", True, f"{who} ({signature}) is not vouched for: the signed "
                                       "lines show a run against the built-in simulator, which "
                                       "neither needs nor checks an approval", vouched=False)
    started = next((line.get("recorded_at") for line in run_lines
                    if line.get("event") == "run_started"), None)
    if isinstance(started, str):
        # Compared as instants (an approval may write any UTC offset), to the second.
        approved_at, started_at = _instant(found.approved_at), _instant(started)
        if approved_at is None:
            return Check("approval", True, f"{who} ({signature}) is not vouched for: its "
                                           "time is not an ISO 8601 time with a UTC offset",
                         vouched=False)
        if started_at is not None and approved_at > started_at.replace(microsecond=0):
            return Check("approval", True, f"{who} ({signature}) is not vouched for: it was "
                                           f"written after the run started ({started})",
                         vouched=False)
    if signature != "signature verified":
        return Check("approval", True, f"approves the policy text that ran; {who} is not "
                                       f"vouched for ({signature})", vouched=False)
    return Check("approval", True, f"{who}, {signature}")


def _instant(text: str) -> datetime | None:
    """An ISO 8601 time with its UTC offset (``Z`` or ``+hh:mm``); None for anything else."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.utcoffset() is not None else None


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


_ABSENT = object()

# Report fields and where a signed audit line states them (a policy's audit template
# may spell the policy flat, as policy_sha256, or nested, as policy.sha256).
_SIGNED_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("target.backend", ("target.backend", "target_backend")),
    ("target.host", ("target.host", "target_host")),
    ("target.tenant", ("target.tenant", "target_tenant")),
    ("tool_version", ("archiver_version",)),
    ("policy.name", ("policy.name", "policy")),
    ("policy.sha256", ("policy.sha256", "policy_sha256")),
    ("policy.git_commit", ("policy.git_commit", "policy_git_commit")),
    ("policy.git_dirty", ("policy.git_dirty", "policy_git_dirty")),
)
_CAMPAIGN_COUNTS = ("listed", "archived", "skipped", "quarantined", "failed", "held",
                    "reconciled")
# Where a batch_archived line states the batch's status: RECONCILED when an earlier run's
# open batch was found archived (gone from the listing), not archived by this run's call.
_BATCH_STATUS = ("result.status", "batch.status", "status")


def _get(data: object, dotted: str) -> object:
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return _ABSENT
        data = data[key]
    return data


def _signed_value(line: dict[str, Any], spellings: tuple[str, ...]) -> object:
    for spelling in spellings:
        value = _get(line, spelling)
        if value is not _ABSENT and not (spelling == "policy" and not isinstance(value, str)):
            return value
    return _ABSENT


def _batch_archived(line: dict[str, Any]) -> int | None:
    ids = line.get("attempt_ids")
    if isinstance(ids, list):
        return len(ids)
    for spelling in ("result.archived_count", "api_reported.archived_count", "archived_count",
                     "batch.archived_count"):
        value = _get(line, spelling)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _differ(field: str, ours: object, theirs: object, where: str) -> Check:
    return Check("report", False, f"{field}: the report says {json.dumps(ours)}, {where} "
                                  f"{json.dumps(theirs)}")


def _check_report(report: dict[str, Any], run_lines: list[dict[str, Any]]) -> list[Check]:
    """The report against the run's signed lines: one FAIL per field that differs, then
    what the signed lines do not state, as not vouched for."""
    finished = next((line for line in reversed(run_lines)
                     if line.get("event") == "run_finished"), None)
    checks = _check_counts(report, finished)
    if finished is None:
        return checks
    vouched: set[str] = set()
    for field, spellings in _SIGNED_FIELDS:
        ours = _get(report, field)
        for line in run_lines:
            theirs = _signed_value(line, spellings)
            if theirs is _ABSENT:
                continue
            vouched.add(field)
            if ours != theirs:
                checks.append(_differ(field, None if ours is _ABSENT else ours, theirs,
                                      f"the signed {line.get('event')} line (seq "
                                      f"{line.get('seq')}) says"))
                break
    counts = finished.get("counts")
    if isinstance(counts, dict):
        vouched.update(f"totals.{k}" for k in counts)
    failed = counts.get("failed") if isinstance(counts, dict) else None
    signed_exit = _get(finished, "result.exit_code")
    if isinstance(signed_exit, int) and not isinstance(signed_exit, bool):
        vouched.add("exit_code")  # the run's own line says how it ended
        if report.get("exit_code") != signed_exit:
            checks.append(_differ("exit_code", report.get("exit_code"), signed_exit,
                                  "the signed run_finished line says"))
    elif isinstance(failed, int) and failed > 0:
        vouched.add("exit_code")  # a run with a failed attempt exits 1, whatever else
        if report.get("exit_code") != EXIT_FAILED:
            checks.append(Check("report", False, "exit_code: the report says "
                                f"{json.dumps(report.get('exit_code'))}, the signed run_finished "
                                f"line counts {failed} failed attempt(s), so the run exited "
                                f"{EXIT_FAILED}"))
    campaigns = [c for c in report.get("campaigns") or [] if isinstance(c, dict)]
    signed_ids = finished.get("campaigns")
    if isinstance(signed_ids, list):
        vouched.add("campaigns[].id")
        ids = [c.get("id") for c in campaigns]
        if ids != signed_ids:
            checks.append(_differ("campaigns[].id", ids, signed_ids,
                                  "the signed run_finished line says"))
    if isinstance(counts, dict):
        for key in _CAMPAIGN_COUNTS:
            if key not in counts:
                continue
            vouched.add(f"campaigns[].{key} (their sum)")
            total = sum(c.get(key, 0) for c in campaigns if isinstance(c.get(key, 0), int))
            if total != counts[key]:
                checks.append(Check(
                    "report", False, f"campaigns[].{key}: the report's campaigns add up to "
                                     f"{total}, the signed run_finished line says {counts[key]}"))
    checks.extend(_check_batches(report, campaigns, run_lines, vouched))
    if all(c.ok for c in checks):
        checks = [Check("report", True, "agrees with the signed lines on: "
                                        f"{', '.join(sorted(vouched))}"),
                  _unvouched(report, vouched, run_lines)]
    return checks


def _check_batches(
    report: dict[str, Any], campaigns: list[dict[str, Any]], run_lines: list[dict[str, Any]],
    vouched: set[str],
) -> list[Check]:
    """``archived_in_this_run`` and ``reconciled``, in all and per campaign, against the
    run's signed ``batch_archived`` lines, when the bundle holds all of them and they state
    counts: a line whose status is RECONCILED_FROM_LISTING (an earlier run's open batch
    found archived) counts as reconciled, any other as archived in this run. Lines that
    do not all state their status vouch only for the sum of the two; a report from before
    ``reconciled`` was counted apart had both in ``archived_in_this_run``."""
    if not any(line.get("event") == "run_started" for line in run_lines):
        return []  # lines of this run may precede the bundled range
    own: dict[str, int] = {}
    found: dict[str, int] = {}
    statuses = True
    for line in run_lines:
        if line.get("event") != "batch_archived":
            continue
        count, campaign = _batch_archived(line), line.get("campaign_id")
        if count is None or not isinstance(campaign, str):
            return []
        status = _signed_value(line, _BATCH_STATUS)
        statuses = statuses and status is not _ABSENT
        into = found if status == RECONCILED else own
        into[campaign] = into.get(campaign, 0) + count
    totals = report.get("totals")
    both = {c: own.get(c, 0) + found.get(c, 0) for c in own.keys() | found.keys()}
    if not (isinstance(totals, dict) and "reconciled" in totals):
        figures = {_NOW: both}
    elif statuses:
        figures = {_NOW: own, _RECONCILED: found}
    else:
        figures = {_BOTH: both}
    checks = []
    for (whole, each), per in figures.items():
        vouched.update({whole, f"campaigns[].{each}"})
        ours = _figure(each, report.get(_NOW[1]), totals)
        if ours != sum(per.values()):
            checks.append(_differ(whole, ours, sum(per.values()),
                                  "the signed batch_archived lines of the run add up to"))
        for campaign in campaigns:
            cid = str(campaign.get("id"))
            theirs = _figure(each, campaign.get(_NOW[1]), campaign)
            if theirs != per.get(cid, 0):
                checks.append(_differ(f"campaign {cid} {each}", theirs, per.get(cid, 0),
                                      "its signed batch_archived lines add up to"))
    return checks


# (the field in all, in each campaign) that signed batch_archived lines add up to
_NOW = ("archived_in_this_run", "archived_in_this_run")
_RECONCILED = ("totals.reconciled", "reconciled")
_BOTH = ("archived_in_this_run + totals.reconciled", "archived_in_this_run + reconciled")


def _figure(field: str, archived_now: object, counts: object) -> object:
    """A report's (or a campaign's) ``field``: its archived_in_this_run, its reconciled
    count, or the sum of the two."""
    reconciled = counts.get("reconciled") if isinstance(counts, dict) else None
    if field == _NOW[1]:
        return archived_now
    if field == _RECONCILED[1]:
        return reconciled
    if (isinstance(archived_now, int) and isinstance(reconciled, int)
            and not isinstance(archived_now, bool) and not isinstance(reconciled, bool)):
        return archived_now + reconciled
    return [archived_now, reconciled]


def _unvouched(report: dict[str, Any], vouched: set[str],
               run_lines: list[dict[str, Any]]) -> Check:
    """The report's fields no signed line states: shown, never claimed verified."""
    rest: list[str] = []
    for key, value in report.items():
        if key == "campaigns":
            inner = sorted({k for c in value if isinstance(c, dict) for k in c}
                           - {"id", "archived_in_this_run", *_CAMPAIGN_COUNTS})
            rest.extend(f"campaigns[].{k}" for k in inner)
            # Those the batch_archived lines vouch for campaign by campaign are not here.
            counts = [k for k in _CAMPAIGN_COUNTS if f"campaigns[].{k}" not in vouched]
            split = "each campaign's " + ", ".join(counts)
            rest.append(split + (" (only their sums are signed)" if any(
                f"campaigns[].{k} (their sum)" in vouched for k in counts) else ""))
            if "campaigns[].archived_in_this_run" not in vouched:
                rest.append("campaigns[].archived_in_this_run")
        elif isinstance(value, dict) and key in ("target", "policy", "totals"):
            rest.extend(f"{key}.{k}" for k in value if f"{key}.{k}" not in vouched)
        elif key not in vouched and key != "run_id":
            rest.append(key)
    times = [line.get("recorded_at") for line in run_lines
             if line.get("event") in ("run_started", "run_finished")]
    span = (f"; the signed lines record the run from {times[0]} to {times[-1]}"
            if len(times) == 2 and all(isinstance(t, str) for t in times) else "")
    return Check("report", True, "not vouched for (no signed line states them): "
                                 f"{', '.join(rest)}{span}", vouched=False)


def _check_counts(report: dict[str, Any], finished: dict[str, Any] | None) -> list[Check]:
    if finished is None:
        return [Check("report", False, "no signed run_finished line of this run in the bundle")]
    counts = finished.get("counts")
    totals = report.get("totals")
    if not isinstance(counts, dict) or not isinstance(totals, dict):
        return [Check("report", False, "no counts to compare in the run_finished line")]
    differ = sorted(k for k, v in counts.items() if totals.get(k) != v)
    if differ:
        return [Check("report", False, "the report's counts differ from the signed run_finished "
                                       f"line: {k} (totals.{k}: the report says "
                                       f"{json.dumps(totals.get(k))}, the signed line says "
                                       f"{json.dumps(counts[k])})") for k in differ]
    return [Check("report", True, "the report's counts are the signed run_finished line's")]
