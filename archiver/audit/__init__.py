"""The tamper-evident audit log: hash-chained JSON Lines, and its verifier."""

from __future__ import annotations

from archiver.audit.chain import GENESIS_HASH, AuditLine
from archiver.audit.log import AuditLog
from archiver.audit.verify import VerifyResult, verify_file

__all__ = ["GENESIS_HASH", "AuditLine", "AuditLog", "VerifyResult", "verify_file"]
