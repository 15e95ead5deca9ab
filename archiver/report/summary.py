"""The end-of-run summary printed on the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(report: dict[str, Any], *, quiet: bool = False, console: Console | None = None) -> None:
    console = console or Console()
    totals = report["totals"]
    if not quiet:
        table = Table(title=f"{report['policy']['name']} · run {report['run_id']}")
        for col in ("campaign", "status", "listed", "archived", "skipped", "quarantined", "failed"):
            table.add_column(col, justify="left" if col in ("campaign", "status") else "right")
        for c in report["campaigns"]:
            table.add_row(
                c["id"], c["status"], str(c["listed"]), str(c["archived"]), str(c["skipped"]),
                str(c["quarantined"]), str(c["failed"]),
            )
        console.print(table)
        for c in report["campaigns"]:
            for r in c["reasons"][:5]:
                console.print(f"  {c['id']}: {r['count']} {r['state']}: {r['reason']}")
            if c["status"] != "done":
                console.print(f"  {c['id']}: {c['status']}: {c['reason']}")
    console.print(
        f"listed {totals['listed']}, archived {totals['archived']}, skipped {totals['skipped']}, "
        f"quarantined {totals['quarantined']}, failed {totals['failed']}"
    )
    pending = {k: v["pending"] for k, v in report.get("outbox", {}).items() if v["pending"]}
    if pending:
        console.print(f"undelivered sink events kept for the next run: {pending}")
