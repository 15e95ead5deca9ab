"""One ``archiver run`` against the contract tests' independent strict server
(``tests/contract/_cleanroom_server``), as its conformance tests run it: the shared part
of the benchmarks that measure archiver against that server with a fault switched on."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tests.contract.test_cleanroom_server as cleanroom  # noqa: E402
from tests.contract._cleanroom_server import APPROVED, Faults, StrictServer  # noqa: E402

cleanroom.RUN_TIMEOUT = 900


@dataclass
class Measured:
    run: cleanroom.Run
    server: StrictServer  # stopped; its ledger and log stay
    wall: float  # seconds of the run, start-up included


def eligible(data: dict[str, list[dict[str, Any]]]) -> set[str]:
    """The attempts a run must archive: approved outcome and anonymized."""
    return {
        r["id"]
        for records in data.values()
        for r in records
        if r["outcomeCode"] in APPROVED and r["anonymized"]
    }


def run_once(data: dict[str, list[dict[str, Any]]], faults: Faults) -> Measured:
    """A fresh server on ``data`` with ``faults``, and one run of archiver against it."""
    server = cleanroom.start_server(faults, data)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            policy = cleanroom.write_policy(work / "policy" / "bench.yaml", server)
            setup = cleanroom.Setup(server, policy, work / "state", work)
            started = time.monotonic()
            run = setup.run()
            return Measured(run, server, time.monotonic() - started)
    finally:
        server.stop()
