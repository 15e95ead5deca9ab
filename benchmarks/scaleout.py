"""Scale-out: two workers share tenants through one PostgreSQL server, against rate limits.

    python benchmarks/scaleout.py [--tenants 4] [--campaigns 3] [--attempts 5000]
                                  [--workers 2] [--rate-limit 20] [--order same|staggered]
                                  [--postgres-url URL] [--keep]

Each tenant is a simulator process of its own (``archiver simulate --rate-limit 20``:
the tenant answers 429 above 20 requests/s, all calls together) serving --campaigns
campaigns of --attempts attempts. Each tenant's state store is a schema of its own
in one PostgreSQL database (a store belongs to one target; the schemas share the
server, its connections and its advisory locks). A worker stands for a machine whose
schedule runs every tenant's policy in turn, one ``archiver run`` process each, with
``ARCHIVER_STATE_URL`` naming the tenant's store: two workers on one tenant split its
campaigns through the campaign locks (a campaign the other holds is reported busy and
left to it), and a tenant a worker finds done costs it a listing and no archive call.
With ``--order same`` (the default) every worker goes through the tenants in the same
order, as the same schedule on two machines would: a worker that finds a tenant's
campaigns held moves on to the next tenant at once, so the workers spread themselves
over the tenants. ``--order staggered`` starts worker k at tenant k * tenants/workers,
as schedules written to spread the tenants would; each worker then lists the tenants
the other one archived, and finds nothing left to do.

Printed: total wall time (first worker started to last worker done), each worker's
runs (tenant, seconds from spawn to exit, exit code, campaigns done and busy,
attempts it archived), and per tenant the API requests its simulator answered (429s
apart) over the time some worker's run was on the tenant (the union of those runs,
start-up included), as requests/s and as a share of the limit. Every tenant is checked against
its simulator's ledger: every eligible attempt archived, none twice, no batch sent
twice (no key replayed); the exit status is 1 when a check fails.

The PostgreSQL server is the one --postgres-url names (a role that may create schemas
in that database), else a throwaway one started for the run (tests/pgserver.py: the
server binaries, run as the ``postgres`` user when run as root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import pgserver  # noqa: E402  (the repository's own helper, after its path)
from tests.support import APPROVED, CLIENT_ID, CLIENT_SECRET, policy_dict  # noqa: E402

_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
RUN_TIMEOUT_SECONDS = 1800
# A production policy's retry (the policy's defaults), not the tests' quick one: a 429's
# Retry-After is whole seconds (the simulator says 1 for any shorter wait), and a policy
# whose max_backoff_seconds is below it gives the call up at the first 429 (the server
# asks for a longer wait than the policy allows), failing its batch. Two workers on one
# tenant do draw 429s: each run keeps its own rate limit.
RETRY = {"max_attempts": 6, "initial_backoff_seconds": 1.5, "max_backoff_seconds": 60,
         "respect_retry_after": True}


@dataclass
class Tenant:
    name: str
    campaigns: list[str]
    base_url: str = ""
    state_url: str = ""
    process: subprocess.Popen[str] | None = None

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.base_url}/_sim/{path}" + (f"?{urlencode(query)}" if query else "")
        with _LOCAL.open(url, timeout=120) as answer:
            return json.load(answer)


@dataclass
class Run:
    worker: int
    tenant: str
    began: float  # wall clock (time.time()), as the simulators stamp requests
    ended: float
    exit_code: int
    done: int = 0
    busy: int = 0
    archived_now: int = 0
    failures: list[str] = field(default_factory=list)  # "N failed: reason", from the report


@dataclass
class Worker:
    index: int
    order: list[Tenant]
    runs: list[Run] = field(default_factory=list)
    finished: float = 0.0


def start_simulator(tenant: Tenant, seed: int, attempts: int, rate_limit: float, log: Path) -> None:
    args = [
        sys.executable, "-m", "archiver", "simulate", "--port", "0", "--seed", str(seed),
        "--attempts", str(attempts), "--rate-limit", f"{rate_limit:g}",
        "--unanonymized-rate", "0", "--malformed-rate", "0",
        "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
        *(a for c in tenant.campaigns for a in ("--campaign", c)),
    ]
    with log.open("w") as err:
        tenant.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO
        )
    assert tenant.process.stdout is not None
    first = tenant.process.stdout.readline()
    if not first.startswith("listening on "):
        raise RuntimeError(f"simulator of {tenant.name} did not start: {first!r}; see {log}")
    tenant.base_url = first.removeprefix("listening on ").strip()
    # The rest of its banner is not read: drain it so the pipe never fills.
    threading.Thread(target=tenant.process.stdout.read, daemon=True).start()


def write_policy(folder: Path, tenant: Tenant, rate_limit: float) -> Path:
    doc = policy_dict(tenant.campaigns, name=f"retention-{tenant.name}")
    doc["connection"]["max_requests_per_second"] = rate_limit  # the tenant's own limit
    doc["connection"]["max_in_flight"] = 4
    doc["source"]["page_size"] = 1000
    doc["batch"]["max_items"] = 200
    doc["retry"] = dict(RETRY)
    doc["campaigns"] = [{"id": c} for c in tenant.campaigns]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_worker(worker: Worker, work: Path, rate_limit: float) -> None:
    for tenant in worker.order:
        folder = work / f"worker-{worker.index}" / tenant.name
        policy = write_policy(folder, tenant, rate_limit)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
        env.update(
            CXONE_BASE_URL=tenant.base_url, CXONE_CLIENT_ID=CLIENT_ID,
            CXONE_CLIENT_SECRET=CLIENT_SECRET, ARCHIVER_STATE_URL=tenant.state_url,
            PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        )
        report = folder / "report.json"
        began = time.time()
        with (folder / "run.log").open("w") as log:
            done = subprocess.run(
                [sys.executable, "-m", "archiver", "run", str(policy), "--report", str(report),
                 "--quiet"],
                env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_SECONDS, check=False,
            )
        run = Run(worker.index, tenant.name, began, time.time(), done.returncode)
        if report.exists():
            data = json.loads(report.read_text())
            run.done = sum(1 for c in data["campaigns"] if c["status"] == "done")
            run.busy = sum(1 for c in data["campaigns"] if c["status"] == "busy")
            run.archived_now = int(data["archived_in_this_run"])
            run.failures = [
                f"{c['id']}: {r['count']} {r['state']}: {r['reason']}"
                for c in data["campaigns"] for r in c["reasons"] if r["state"] == "failed"
            ]
        worker.runs.append(run)
    worker.finished = time.perf_counter()


def worked(runs: list[Run]) -> float:
    """Seconds during which at least one of ``runs`` was running (their union)."""
    total, end = 0.0, float("-inf")
    for run in sorted(runs, key=lambda r: r.began):
        start = max(run.began, end)
        if run.ended > start:
            total += run.ended - start
        end = max(end, run.ended)
    return total


def check_tenant(
    tenant: Tenant, runs: list[Run], rate_limit: float
) -> tuple[list[str], list[str]]:
    """(row cells, problems) for one tenant, from its simulator."""
    stats = tenant.get("stats")
    ledger: dict[str, int] = tenant.get("ledger")["attempts"]
    eligible: set[str] = set()
    for campaign in tenant.campaigns:
        eligible |= set(tenant.get("eligible", campaign=campaign,
                                   approved=",".join(APPROVED))["ids"])
    problems = []
    twice = sum(1 for n in ledger.values() if n > 1)
    if twice or stats["double_archived"]:
        problems.append(f"{tenant.name}: {max(twice, stats['double_archived'])} attempts archived twice")
    if set(ledger) != eligible:
        problems.append(f"{tenant.name}: {len(eligible - set(ledger))} eligible attempts not archived, "
                        f"{len(set(ledger) - eligible)} ineligible archived")
    if stats["replays"]:
        problems.append(f"{tenant.name}: {stats['replays']} batches sent twice (keys replayed)")
    total = int(stats["total_requests"])  # /_sim/ calls are not counted
    limited = int(stats["rate_limited"])
    window = worked([r for r in runs if r.tenant == tenant.name])
    answered = total - limited
    rate = answered / window if window else 0.0
    cells = [tenant.name, f"{total}", f"{limited}", f"{window:.1f}", f"{rate:.1f}",
             f"{rate / rate_limit:.0%}", f"{len(ledger):,}/{len(eligible):,}",
             "ok" if not problems else "FAILED"]
    return cells, problems


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--campaigns", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate-limit", type=float, default=20.0)
    parser.add_argument("--order", choices=["same", "staggered"], default="same")
    parser.add_argument("--postgres-url", help="a database where schemas may be created")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working folder (and the schemas in --postgres-url's database)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="archiver-scaleout-"))
    server = None
    admin: str | None = None
    schemas: list[str] = []
    tenants = [
        Tenant(f"tenant{t + 1}", [f"{t + 1:08d}-0000-4000-8000-{c + 1:012d}"
                                  for c in range(args.campaigns)])
        for t in range(args.tenants)
    ]
    try:
        admin = args.postgres_url
        if admin is None:
            bin_dir = pgserver.find_bin_dir()
            if bin_dir is None:
                print("no PostgreSQL server binaries: pass --postgres-url", file=sys.stderr)
                return 2
            server = pgserver.PostgresServer(bin_dir)
            admin = server.start()
        run_id = f"scaleout_{os.getpid()}"
        with psycopg.connect(admin, autocommit=True) as db:
            for tenant in tenants:
                schema = f"{run_id}_{tenant.name}"
                db.execute(f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                tenant.state_url = pgserver.with_options(admin, search_path=schema)
        for n, tenant in enumerate(tenants):
            start_simulator(tenant, 100 + n, args.attempts, args.rate_limit,
                            work / f"{tenant.name}-simulator.log")
        workers = []
        for k in range(args.workers):
            first = (k * len(tenants)) // args.workers if args.order == "staggered" else 0
            workers.append(Worker(k + 1, tenants[first:] + tenants[:first]))

        print(f"scale-out: {args.tenants} tenants x {args.campaigns} campaigns x "
              f"{args.attempts:,} attempts, {args.workers} workers ({args.order} order), "
              f"{args.rate_limit:g} requests/s per tenant; one PostgreSQL database, a schema "
              "per tenant; policy: page_size 1000, max_items 200, max_in_flight 4, "
              f"max_requests_per_second {args.rate_limit:g}, retry max_attempts "
              f"{RETRY['max_attempts']}, max_backoff_seconds {RETRY['max_backoff_seconds']}")
        started = time.perf_counter()
        threads = [threading.Thread(target=run_worker, args=(w, work, args.rate_limit))
                   for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = max(w.finished for w in workers) - started

        problems: list[str] = []
        rows = []
        for w in workers:
            for r in w.runs:
                rows.append([f"worker {r.worker}", r.tenant, f"{r.ended - r.began:.1f}", str(r.exit_code),
                             str(r.done), str(r.busy), f"{r.archived_now:,}"])
                if r.exit_code != 0:
                    why = "; ".join(r.failures) or "see its run.log (--keep)"
                    problems.append(f"worker {r.worker}, {r.tenant}: exit {r.exit_code} ({why})")
        print()
        print(table(["worker", "tenant", "run s", "exit", "done", "busy", "archived by it"], rows))
        print()
        tenant_rows = []
        for tenant in tenants:
            cells, found = check_tenant(
                tenant, [r for w in workers for r in w.runs], args.rate_limit)
            tenant_rows.append(cells)
            problems += found
        print(table(["tenant", "requests", "429s", "worked s", "answered/s", "of limit",
                     "archived/eligible", "ledger"], tenant_rows))
        print()
        total = sum(len(t.get("ledger")["attempts"]) for t in tenants)
        print(f"total wall time: {wall:.1f} s for {total:,} attempts archived "
              f"({total / wall:,.0f} attempts/s)")
        for p in problems:
            print(f"FAILED: {p}")
        if args.keep:
            print(f"kept: {work}")
        return 1 if problems else 0
    finally:
        for tenant in tenants:
            if tenant.process is not None:
                tenant.process.terminate()
                tenant.process.wait(timeout=30)
        if server is not None:
            server.stop()
        elif admin is not None and schemas and not args.keep:
            with psycopg.connect(admin, autocommit=True) as db:
                for schema in schemas:
                    db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
