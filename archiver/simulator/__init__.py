"""A strict, fault-injecting CXone API on loopback, for tests, demos and benchmarks.

It reads the HTTP contract independently of :mod:`archiver.cxone` (nothing is
imported from there), so a misreading in one shows up as a failure in the other.

    with Simulator(SimConfig(campaigns=2), Faults(rate_limit_rps=10)) as sim:
        ...  # point a client at sim.base_url; read sim.ledger(), sim.stats()
"""

from __future__ import annotations

from archiver.simulator.config import DEFAULT_OUTCOME_MIX, TUTORIAL_APPROVED, Faults, SimConfig
from archiver.simulator.runner import Simulator
from archiver.simulator.webhooks import sign

__all__ = [
    "DEFAULT_OUTCOME_MIX",
    "TUTORIAL_APPROVED",
    "Faults",
    "SimConfig",
    "Simulator",
    "sign",
]
