from __future__ import annotations

from pathlib import Path

import pytest

from archiver.audit import AuditLog


@pytest.fixture
def six_line_log(tmp_path: Path) -> Path:
    """An intact audit log of six lines whose records differ."""
    path = tmp_path / "audit" / "log.jsonl"
    log = AuditLog(path)
    for n in range(1, 7):
        log.append(
            {"event": "batch_archived", "batch_seq": n, "note": f"batch {n} ✓"}, event_id=f"e{n}"
        )
    return path
