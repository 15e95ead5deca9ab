"""Exactness of one ``archiver run`` when archive answers are lost after taking effect.

    python benchmarks/lost_answers.py [--campaigns N] [--attempts N] [--shares 0.3,0.6]
                                      [--modes 502,drop]

The independent strict server of the contract tests (``tests/contract/_cleanroom_server``)
keeps no idempotency keys (the contract names none): an archive call sent twice
archives its attempts twice. It makes a share of archive calls take effect and then
lose their answer, as a gateway's 502 or as a connection closed unanswered. archiver
runs against it as in those tests (max_in_flight 4, batches of 200). Default: 3
campaigns x 400 attempts. Printed per run: archive calls, answers lost, attempts the
server archived more than once, eligible attempts never archived, the exit code and
the report's archived and failed counts. "exact": every eligible attempt archived
once, exit 0.
"""

from __future__ import annotations

import argparse
import sys

from _cleanroom import eligible, run_once

from tests.contract._cleanroom_server import Faults, make_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=400)
    parser.add_argument("--shares", default="0.3,0.6")
    parser.add_argument("--modes", default="502,drop", help="502: a gateway's answer; drop: none")
    args = parser.parse_args()
    data = make_dataset(args.campaigns, args.attempts)
    wanted = eligible(data)
    print(f"{args.campaigns} campaigns x {args.attempts} attempts, {len(wanted)} eligible")
    print(f"{'lost':>5}  {'as':>4}  {'wall s':>6}  {'archive calls':>13}  {'lost':>4}  "
          f"{'archived twice':>14}  {'missing':>7}  {'exit':>4}  {'archived':>8}  "
          f"{'failed':>6}  exact")
    failed = False
    for mode in args.modes.split(","):
        for share in (float(s) for s in args.shares.split(",")):
            measured = run_once(data, Faults(lost_answer_share=share, lost_answer=mode))
            run, server, wall = measured.run, measured.server, measured.wall
            calls = server.calls("archive")
            lost = sum(1 for e in calls if e.status in (0, 502))
            twice = sum(1 for n in server.ledger.values() if n > 1)
            missing = len(wanted - set(server.ledger))
            totals = run.report["totals"]
            exact = run.exit_code == 0 and not twice and not missing and (
                set(server.ledger) == wanted)
            failed |= not exact
            print(
                f"{share:>5.0%}  {mode:>4}  {wall:>6.1f}  {len(calls):>13}  {lost:>4}  "
                f"{twice:>14}  {missing:>7}  {run.exit_code:>4}  {totals['archived']:>8}  "
                f"{totals['failed']:>6}  {'yes' if exact else 'NO'}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
