"""Approval of a policy: who approved which exact text, kept beside the policy.

``archiver approve POLICY`` writes ``POLICY.approved``, a small YAML file committed
and reviewed with the policy: the policy's SHA-256, who approved it and when, and
optionally an SSH signature over those three made with ``ssh-keygen -Y sign`` (the
way git signs commits with SSH keys). A run against a real tenant refuses a policy
whose current SHA-256 has no approval; with an allowed-signers file (git's
``gpg.ssh.allowedSignersFile`` format) it also requires the signature to verify
against the approver's key.

The approval binds the policy's bytes: any edit, even whitespace, needs a new one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from archiver.errors import ConfigError, NotApproved, UsageError
from archiver.regular_file import read_regular

SUFFIX = ".approved"
# ssh-keygen's namespace keeps a signature made for this from being valid for
# anything else (a git commit, a file signature) and the other way round.
NAMESPACE = "archiver-policy-approval"
ALLOWED_SIGNERS_ENV = "ARCHIVER_ALLOWED_SIGNERS"
_SSH_TIMEOUT_SECONDS = 30
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Approval:
    sha256: str
    approved_by: str
    approved_at: str
    signature: str | None = None

    def message(self) -> bytes:
        """What a signature covers: the hash, the approver and the time, nothing else."""
        return (
            f"{NAMESPACE}\nsha256 {self.sha256}\napproved_by {self.approved_by}\n"
            f"approved_at {self.approved_at}\n"
        ).encode()


@dataclass(frozen=True, slots=True)
class ApprovalState:
    """What ``plan`` shows and ``run`` enforces for one policy text."""

    approved: bool
    detail: str
    approval: Approval | None = None


def policy_sha256(data: bytes) -> str:
    """The hash an approval names: SHA-256 of the policy file's bytes, as loading computes it."""
    return hashlib.sha256(data).hexdigest()


def approval_path(policy_path: Path) -> Path:
    return policy_path.with_name(policy_path.name + SUFFIX)


def read(path: Path) -> Approval | None:
    """The approval at ``path``; None when there is none; ConfigError when it is unreadable."""
    try:
        # A pipe or a device is refused, not waited on.
        raw = read_regular(path, _MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"cannot read approval {path}: {err.strerror}") from err
    return parse(raw, str(path))


def parse(raw: bytes, name: str) -> Approval:
    """The approval in ``raw`` (named ``name`` in errors); NotApproved (exit 77, as for no
    approval at all) when it is not one: a policy whose approval file is broken has no
    valid approval."""
    if len(raw) > _MAX_BYTES:
        raise NotApproved(f"approval {name} is larger than {_MAX_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise NotApproved(f"approval {name} is not YAML: {type(err).__name__}") from err
    except (ValueError, RecursionError) as err:
        # YAML the loader cannot turn into values: a date that does not exist
        # (2026-02-30), an integer past Python's digit limit, nesting past the stack.
        raise NotApproved(
            f"approval {name} is not YAML an approval can hold (a date that does not exist, "
            "a number too long or nesting too deep)"
        ) from err
    if not isinstance(data, dict):
        raise NotApproved(f"approval {name} is not a mapping")
    fields = {k: data.get(k) for k in ("sha256", "approved_by", "approved_at")}
    for key, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise NotApproved(f"approval {name}: `{key}` is missing or not text")
    signature = data.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise NotApproved(f"approval {name}: `signature` is not text")
    return Approval(
        sha256=str(fields["sha256"]),
        approved_by=str(fields["approved_by"]),
        approved_at=str(fields["approved_at"]),
        signature=signature,
    )


def write(path: Path, approval: Approval) -> None:
    data: dict[str, str] = {
        "sha256": approval.sha256,
        "approved_by": approval.approved_by,
        "approved_at": approval.approved_at,
    }
    if approval.signature:
        data["signature"] = approval.signature
    header = (
        "# archiver policy approval: the policy's SHA-256, who approved it and when.\n"
        "# Written by `archiver approve`; commit it with the policy.\n"
    )
    text = header + yaml.safe_dump(data, sort_keys=False, default_style=None)
    # A fresh name, created here and never followed: whatever a policy change left
    # beside the policy (a symlink named like a temporary file) is not written through.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
    except OSError as err:
        raise ConfigError(f"cannot write approval {path}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write approval {path}: {err.strerror}") from err


def default_approver(folder: Path) -> str:
    """git's user.email as seen from ``folder``; UsageError when git has none."""
    try:
        found = subprocess.run(
            ["git", "config", "user.email"], cwd=folder, capture_output=True, text=True,
            timeout=_SSH_TIMEOUT_SECONDS, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    if not found:
        raise UsageError("no approver: pass --by WHO (git config user.email is not set)")
    return found


def approve(
    policy_path: Path, sha256: str, *, by: str, signing_key: Path | None = None,
    at: datetime | None = None,
) -> Approval:
    """Write the approval of ``sha256`` beside the policy; signed when ``signing_key`` is given."""
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approval = Approval(sha256=sha256, approved_by=by, approved_at=when)
    if signing_key is not None:
        approval = Approval(sha256, by, when, signature=_ssh_sign(approval.message(), signing_key))
    write(approval_path(policy_path), approval)
    return approval


def state(
    policy_path: Path, sha256: str, *, allowed_signers: Path | None = None
) -> ApprovalState:
    """Whether the policy text with ``sha256`` is approved, and in what words to say so."""
    path = approval_path(policy_path)
    try:
        approval = read(path)
    except NotApproved as err:  # a broken approval file approves nothing
        return ApprovalState(False, str(err))
    if approval is None:
        return ApprovalState(False, f"no approval ({path.name} does not exist)")
    if approval.sha256 != sha256:
        return ApprovalState(
            False,
            f"{path.name} approves sha256 {approval.sha256[:12]}, not this text "
            f"({sha256[:12]}): the policy changed since it was approved",
            approval,
        )
    who = f"approved by {approval.approved_by} at {approval.approved_at}"
    if allowed_signers is None:
        signed = " (signed, not checked: no allowed-signers file)" if approval.signature else ""
        return ApprovalState(True, who + signed, approval)
    if not approval.signature:
        return ApprovalState(
            False, f"{who}, but unsigned, and an allowed-signers file requires a signature",
            approval,
        )
    problem = _ssh_verify(approval, allowed_signers)
    if problem:
        return ApprovalState(False, f"{who}, but the signature does not verify: {problem}",
                             approval)
    return ApprovalState(True, who + ", signature verified", approval)


def require(
    policy_path: Path, sha256: str, *, allowed_signers: Path | None = None
) -> ApprovalState:
    """The approval state; NotApproved (exit 77) naming the policy and hash when it is not."""
    if str(policy_path) == "-":
        # No file, so nothing beside it: not "./-.approved", which `approve -` cannot write.
        raise NotApproved(
            f"a policy read from standard input (sha256 {sha256}) has no approval beside it; "
            "against a real tenant, run the policy file that `archiver approve` approved"
        )
    found = state(policy_path, sha256, allowed_signers=allowed_signers)
    if not found.approved:
        raise NotApproved(
            f"{policy_path} (sha256 {sha256}) is not approved: {found.detail}; "
            f"a reviewer approves it with `archiver approve {policy_path}`"
        )
    return found


def allowed_signers_from_env() -> Path | None:
    """The allowed-signers file ``ARCHIVER_ALLOWED_SIGNERS`` names, if it names one."""
    value = os.environ.get(ALLOWED_SIGNERS_ENV, "").strip()
    return Path(value) if value else None


def _ssh(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["ssh-keygen", *args], input=data, capture_output=True,
            timeout=_SSH_TIMEOUT_SECONDS, check=False,
        )
    except FileNotFoundError:
        raise ConfigError("ssh-keygen is not installed: it signs and verifies approvals") from None
    except subprocess.TimeoutExpired:
        raise ConfigError("ssh-keygen did not finish (does the key need a passphrase "
                          "with no agent to ask?)") from None


def _first_line(output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "no explanation given"


def _ssh_sign(message: bytes, key: Path) -> str:
    """``ssh-keygen -Y sign`` of ``message`` with the private key at ``key``."""
    result = _ssh(["-Y", "sign", "-f", str(key), "-n", NAMESPACE, "-q"], message)
    if result.returncode != 0 or b"BEGIN SSH SIGNATURE" not in result.stdout:
        raise ConfigError(f"ssh-keygen could not sign with {key}: {_first_line(result.stderr)}")
    return result.stdout.decode("ascii").strip() + "\n"


def signature_problem(approval: Approval, allowed_signers: Path) -> str | None:
    """None when the approval's signature verifies for its approver with
    ``allowed_signers``; else why not (also when it carries no signature)."""
    if not approval.signature:
        return "unsigned, and an allowed-signers file requires a signature"
    return _ssh_verify(approval, allowed_signers)


def _ssh_verify(approval: Approval, allowed_signers: Path) -> str | None:
    """None when the signature verifies for the approver; else why not."""
    assert approval.signature is not None
    if not allowed_signers.is_file():
        raise ConfigError(f"allowed-signers file {allowed_signers} does not exist")
    with tempfile.TemporaryDirectory(prefix="archiver-approval-") as folder:
        signature = Path(folder) / "approval.sig"
        signature.write_text(approval.signature, encoding="ascii", errors="replace")
        os.chmod(signature, 0o600)
        result = _ssh(
            ["-Y", "verify", "-f", str(allowed_signers), "-I", approval.approved_by,
             "-n", NAMESPACE, "-s", str(signature)],
            approval.message(),
        )
    if result.returncode == 0:
        return None
    return _first_line(result.stderr or result.stdout)
