"""Wall time of one ``archiver run`` when a share of calls is answered 429 at random.

    python benchmarks/random_429.py [--campaigns N] [--attempts N] [--shares 0,0.05,...]
                                    [--retry-after 1,none]

The independent strict server of the contract tests (``tests/contract/_cleanroom_server``)
answers a share of its calls 429 whatever the load (a busy shared gateway in front of
the tenant), with ``Retry-After: 1`` or without the header, and no rate limit of its own;
archiver runs against it as in those tests (max_in_flight 4, max_requests_per_second
500). Default: 4 campaigns x 2,000 attempts, about 120 API calls, at 0, 5, 10 and 15 %.
Every run is checked against the server's ledger: each eligible attempt archived once
("exact").
"""

from __future__ import annotations

import argparse
import sys

from _cleanroom import eligible, run_once

from tests.contract._cleanroom_server import Faults, make_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--shares", default="0,0.05,0.10,0.15")
    parser.add_argument("--retry-after", default="1,none", help="header values; none: no header")
    args = parser.parse_args()
    data = make_dataset(args.campaigns, args.attempts)
    wanted = eligible(data)
    print(f"{args.campaigns} campaigns x {args.attempts} attempts, {len(wanted)} eligible")
    print(
        f"{'429 share':>9}  {'Retry-After':>11}  {'wall s':>7}  {'API calls':>9}  {'429s':>4}  exact"
    )
    failed = False
    for header in args.retry_after.split(","):
        for share in (float(s) for s in args.shares.split(",")):
            retry_after = None if header == "none" else header
            measured = run_once(data, Faults(rate_limit_share=share, retry_after=retry_after))
            run, server, wall = measured.run, measured.server, measured.wall
            api = [e for e in server.log if e.endpoint != "webhook"]
            refused = sum(1 for e in api if e.status == 429)
            exact = (
                run.exit_code == 0
                and set(server.ledger) == wanted
                and all(n == 1 for n in server.ledger.values())
            )
            failed |= not exact
            print(
                f"{share:>9.0%}  {header:>11}  {wall:>7.1f}  {len(api):>9}  {refused:>4}  "
                f"{'yes' if exact else 'NO'}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
