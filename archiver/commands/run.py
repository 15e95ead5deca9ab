"""``archiver run``: run policies end to end."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from archiver.audit import AuditLog
from archiver.audit.chain import SIGNING_KEY_ENV
from archiver.clock import now
from archiver.commands._paths import PathParam
from archiver.commands._state import HELP, STATE, default_state
from archiver.commands._text import TEXT
from archiver.connect import connect, limit_host, target_of
from archiver.cxone.ratelimit import HostLimits
from archiver.engine import failpoints
from archiver.engine.budget import BatchBudget
from archiver.engine.outbox import check_sink_routes
from archiver.engine.records import FINAL_STATES
from archiver.engine.runner import check_state_target, new_run_id, run_policy
from archiver.errors import ArchiverError, AuthError, PolicyError, UsageError
from archiver.governance import approval
from archiver.policy import Policy, load_policy
from archiver.policy._loader import folder_results
from archiver.report.logs import RunContextFilter, configure_logging, level_from
from archiver.report.monitor import RunMonitor, extend_report
from archiver.report.progress import LogProgress, TerminalProgress, console_lines
from archiver.report.redact import register_secret
from archiver.report.summary import print_summary, shown_status
from archiver.settings import Settings
from archiver.stages.registry import (
    BuildContext,
    audit_logs,
    build_pipeline_stages,
    build_sinks,
)
from archiver.state.files import remove_output, storage_error, write_output
from archiver.state.location import StateLocation

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.cxone.ratelimit import RateLimiter
    from archiver.report.metrics import RunMetrics

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def report_path_for(report_path: Path, policy_name: str, several: bool) -> Path:
    """``--report FILE`` itself for one policy; ``FILE`` with the policy name inserted for several."""
    if not several:
        return report_path
    return report_path.with_name(f"{report_path.stem}.{policy_name}{report_path.suffix}")


@click.command("run")
@click.argument("policies", nargs=-1, required=True, type=PathParam(reads=True, path_type=Path))
@click.option(
    "--state", "state_dir", type=STATE,
    help=f"{HELP} Default: a .archiver/ folder beside the policy.",
)
@click.option(
    "--report", "report_path", type=PathParam(reads=False, dir_okay=False, path_type=Path),
    help="Write the JSON run report here (schema: schemas/run-report.schema.json). With several "
    "policies, one file each: FILE's name with the policy name before the extension (so "
    "policies of one name cannot run in one command). An earlier run's report at the path is "
    "removed before the first request, so a policy the command writes no report for (not "
    "started, ended by an error, or killed) has none there (`archiver runs show ID` keeps it).",
)
@click.option(
    "--metrics", "metrics_path", type=PathParam(reads=False, dir_okay=False, path_type=Path),
    help="Write Prometheus metrics here for node_exporter's textfile collector (name it *.prom).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Log lines on stderr as text or as one JSON object per line.",
)
@click.option(
    "--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Least severe log level shown. Default: info (warning with --quiet).",
)
@click.option("--verbose", "-v", count=True, help="Debug logging (same as --log-level debug).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final summary line.")
@click.option(
    "--campaign", "campaigns", multiple=True, metavar="ID", type=TEXT,
    help="Run only this campaign of the policies (repeatable); an ID no policy lists is a "
    "usage error. A cautious first production run, one campaign at a time.",
)
@click.option(
    "--max-batches", type=click.IntRange(min=1), metavar="N",
    help="Stop cleanly once N archive batches were sent, counted over the whole command "
    "(every campaign of every policy given; a batch counts once whatever its answer and "
    "however many tries its call took). What was listed but not batched stays pending: "
    "the next run lists it again and goes on from there. Policies not reached are not "
    "started, and an earlier run's --report file of theirs is removed. A cautious first "
    "production run.",
)
@click.option(
    "--base-url", metavar="URL",
    help="The API host instead of the policy's connection.base_url (wins over CXONE_BASE_URL; "
    "never read from .env). The run's log says so at start.",
)
def command(
    policies: tuple[Path, ...],
    state_dir: StateLocation | None,
    report_path: Path | None,
    metrics_path: Path | None,
    log_format: str,
    log_level: str | None,
    verbose: int,
    quiet: bool,
    campaigns: tuple[str, ...],
    max_batches: int | None,
    base_url: str | None,
) -> None:
    """Archive the completed attempts POLICY declares, then report.

    POLICY may be a folder: every policy under it runs (test files aside), one
    after another, each with its own report, and a combined line at the end.
    The policies that talk to the same API host share one rate limit: its
    ceiling is the lowest max_requests_per_second of them, and a rate one
    learnt from 429s is where the next starts.

    Lists every campaign completely, decides each attempt (archive with a
    retention period, skip, quarantine), posts archive batches, delivers the
    warehouse webhooks and writes the audit log. Safe to kill at any moment:
    running it again resumes where it stopped and never archives an attempt
    twice. Two runs on the same state folder at once: the second refuses.
    Runs sharing a PostgreSQL store (--state postgresql://...) each take the
    campaigns no other run holds; one another holds is reported busy.

    Progress goes to stderr: a live display on a terminal, log lines
    otherwise. The summary goes to stdout.

    SIGINT or SIGTERM stops a run within seconds: calls in flight are
    abandoned, paused campaigns are resumed, the summary says "interrupted;
    run again to resume", and the next run finishes the work.

    --max-batches N stops as cleanly once N batches were sent: batches in
    flight finish, paused campaigns are resumed, campaigns with attempts left
    are reported `stopped` and those attempts `pending` (not failed), policies
    not reached are not started (with --report, the report an earlier run left
    at their path is removed, so none is read as this run's), and the summary
    says "stopped after N batches (--max-batches N); run again to continue".
    The exit code is as
    without the option: 0 unless an attempt failed (stopping at the limit is
    what was asked, so a scheduler sees no failure; the report's batch_limit
    says whether the run stopped there).

    A run against a real tenant (not `embedded`, not a loopback test server)
    needs an approval of the policy's exact text: `archiver approve POLICY`
    writes it; with ARCHIVER_ALLOWED_SIGNERS set it must also be SSH-signed by
    a key that file lists for the approver.

    Exit codes: 0 every listed attempt reached a final state other than failed;
    1 some failed (a later run retries them), the host cannot be reached, or
    the run was interrupted (SIGINT/SIGTERM: run it again to resume);
    2 usage; 74 the state folder, the audit log, the report or the metrics
    file cannot be written (the message names it; a rerun archives nothing
    twice); 75 the state folder is in use by another run, or another process
    has held an audit log's lock for 10 seconds (try again later); 77 a real tenant and
    a policy text without a valid approval; 78 invalid policy, missing secret
    or refused credentials, or a state folder, state file or audit log that is
    a link, another user's, or not archiver's own.
    """
    failpoints.check()
    stderr = Console(stderr=True)
    live = stderr.is_terminal and not quiet
    context = configure_logging(
        fmt="json" if log_format == "json" else "text",
        level=level_from(log_level, verbose, quiet),
        write=console_lines(stderr) if live else None,
    )
    settings = Settings.load(base_url)
    signing_key = _signing_key()
    metrics: RunMetrics | None = None
    if metrics_path is not None:
        # Loaded only when asked for: prometheus_client is most of the cost of importing it.
        from archiver.report.metrics import RunMetrics, previous_successes

        with _writing(metrics_path):
            metrics = RunMetrics(previous_successes(metrics_path))
    # Every policy is checked before the first request of any of them.
    loaded = _select([(path, load_policy(path)) for path in _policy_paths(policies)], campaigns)
    _one_name_each(loaded)
    outputs = [("--metrics", metrics_path)] if metrics_path is not None else []
    if report_path is not None:
        outputs += [("--report", report_path_for(report_path, policy.name, len(loaded) > 1))
                    for _, policy in loaded]
    _refuse_overwriting(outputs, loaded, state_dir)
    signers = approval.allowed_signers_from_env()
    for path, policy in loaded:
        # A real tenant runs only the exact text a reviewer approved.
        if target_of(policy, settings).production:
            approval.require(path, policy.sha256, allowed_signers=signers)
    exit_code = 0
    reports: list[dict[str, Any]] = []
    budget = BatchBudget(max_batches)
    limits = HostLimits()
    for _, policy in loaded:
        host = limit_host(policy, settings)
        if host is not None:
            limits.declare(host, policy.connection.max_requests_per_second)
    # Every policy's report an earlier command left goes before the first request, so
    # none is read as this command's however it ends (killed outright by SIGKILL or the
    # out-of-memory killer included); the state store keeps them all.
    removed = _remove_earlier_reports(report_path, loaded) if report_path is not None else set()
    # The policies this command started, and those it wrote a report for.
    started: set[str] = set()
    reported: set[str] = set()
    stopped_by = "the run was interrupted"
    try:
        for path, policy in loaded:
            if budget.spent:
                stopped_by = f"--max-batches {budget.limit} reached"
                break  # --max-batches reached: the policies left are not started
            folder = state_dir or default_state(path)
            started.add(policy.name)
            try:
                report, _, refused = _run_one(
                    policy, settings, folder, context, stderr, live, budget, limits
                )
            except ArchiverError as err:
                if metrics is not None and metrics_path is not None:
                    _metrics_unstarted(metrics, metrics_path, policy, settings, folder, err)
                raise
            if signing_key is not None:
                _sign_audit_logs(policy, signing_key, str(report["run_id"]))
            if metrics is not None and metrics_path is not None:
                metrics.record(report, folder)
                with _writing(metrics_path):
                    metrics.write(metrics_path)
            print_summary(report, quiet=quiet)
            if report_path is not None:
                name = str(report["policy"]["name"])
                target = report_path_for(report_path, name, len(loaded) > 1)
                with _writing(target):
                    _write_json(target, report)
                reported.add(name)
            exit_code = max(exit_code, int(report["exit_code"]))
            reports.append(report)
            if refused is not None:
                raise refused  # revoked during the run: one line and exit 78, as at the start
            if report["interrupted"]:
                break  # a stop stops the command, not only the policy it came during
    except BaseException:
        if report_path is not None:
            _say_unreported(report_path, loaded, removed - reported, started,
                            "an earlier policy's error")
        raise
    if report_path is not None:
        _say_unreported(report_path, loaded, removed - reported, started, stopped_by)
    if len(loaded) > 1:
        _combined_line(reports, len(loaded), budget)
    raise SystemExit(exit_code)


def _metrics_unstarted(
    metrics: RunMetrics, path: Path, policy: Policy, settings: Settings,
    folder: StateLocation, err: ArchiverError,
) -> None:
    """The metrics of a run that ended before it had a report (credentials refused at
    login, say): without them the file would still show the last run's exit code, 0
    perhaps. A file that cannot be written now is left as it is: ``err`` is what the
    command reports."""
    metrics.record_unstarted(policy.name, target_of(policy, settings).as_dict(),
                             err.exit_code, folder)
    try:
        with _writing(path):
            metrics.write(path)
    except ArchiverError as failed:
        logger.warning("metrics not written: %s", failed)


def _remove_earlier_reports(report_path: Path, loaded: list[tuple[Path, Policy]]) -> set[str]:
    """Remove the report an earlier command left at the report path of each policy, before
    the first request; the names of the policies that had one. Only a regular file is
    removed: a device such as ``/dev/null`` or a folder is no report. One that cannot be
    removed is the storage error (exit 74) a report not written is, and nothing is sent."""
    several = len(loaded) > 1
    removed: set[str] = set()
    for _, policy in loaded:
        target = report_path_for(report_path, policy.name, several)
        try:
            if remove_output(target):
                removed.add(policy.name)
        except OSError as err:
            raise storage_error("cannot remove the report of an earlier run", target, err,
                                retry="run again (nothing was sent)") from err
    return removed


def _refuse_overwriting(
    outputs: list[tuple[str, Path]], loaded: list[tuple[Path, Policy]],
    state_dir: StateLocation | None,
) -> None:
    """``outputs`` (option, path) name files the command removes or replaces: never one it
    reads or keeps. A policy given, an audit log a policy writes, or a path inside a state
    folder is a usage error, before anything is touched (an earlier report is removed
    before the first request: a slip of the option would otherwise destroy that file)."""
    kept: list[tuple[Path, str]] = []
    folders: list[Path] = []
    for path, policy in loaded:
        kept.append((path.resolve(), "a policy this command runs"))
        kept.extend((policy.resolve(written, what="audit log").resolve(),
                     f"the audit log of policy {policy.name}")
                    for written in audit_logs(policy))
        folder = state_dir if state_dir is not None else default_state(path)
        if isinstance(folder, Path):
            folders.append(folder.resolve())
    for option, target in outputs:
        resolved = target.resolve()
        for path, what in kept:
            # A hard link to the file is the file too.
            if resolved == path or (resolved.exists() and path.exists()
                                    and os.path.samefile(resolved, path)):
                raise UsageError(f"{option} {target}: that is {what}; choose another path")
        for folder in folders:
            if resolved.is_relative_to(folder):
                raise UsageError(f"{option} {target}: that is inside the state folder "
                                 f"{folder}, archiver's own; choose another path")


def _say_unreported(
    report_path: Path, loaded: list[tuple[Path, Policy]], unreported: set[str],
    started: set[str], stopped_by: str,
) -> None:
    """Name each policy whose earlier report was removed at the start and that got none
    from this command: not started (``stopped_by`` says why: --max-batches reached, say)
    or ended by an error before its report (refused at its start, say)."""
    several = len(loaded) > 1
    for _, policy in loaded:
        if policy.name not in unreported:
            continue
        why = "ended without a report" if policy.name in started else f"not started: {stopped_by}"
        logger.warning(
            "policy %s %s: %s, the report of an earlier run, removed (archiver runs "
            "show ID still has it)", policy.name, why,
            report_path_for(report_path, policy.name, several),
        )


def _policy_paths(given: tuple[Path, ...]) -> list[Path]:
    """The policy files ``given`` names: files as they are, folders as the policies under them."""
    found: list[Path] = []
    for path in given:
        if not path.is_dir():
            found.append(path)
            continue
        inside = folder_results(path)  # a policy's hold files beside it left out
        if not inside:
            raise UsageError(f"{path}: no policy files (*.yaml, *.yml) under this folder")
        refused = [problem for problems in inside.values() for problem in problems]
        if refused:
            raise PolicyError(refused)
        found.extend(inside)
    return found


def _one_name_each(loaded: list[tuple[Path, Policy]]) -> None:
    """Refuse policies of one name in one command: a run's report file (``--report`` with
    several policies), its metrics series and its running totals are its policy name's,
    so one would overwrite or swell the other's."""
    first: dict[str, Path] = {}
    for path, policy in loaded:
        seen = first.setdefault(policy.name, path)
        if seen is not path:
            raise UsageError(
                f"policies {seen} and {path} are both named `{policy.name}`: a run's report, "
                "metrics and totals go by the policy's name; give each policy its own"
            )


def _select(
    loaded: list[tuple[Path, Policy]], wanted: tuple[str, ...]
) -> list[tuple[Path, Policy]]:
    """Each policy with only the ``--campaign`` campaigns (all without the option); policies
    left with none drop out. A wanted id that no policy lists is a usage error."""
    if not wanted:
        return loaded
    chosen = set(wanted)
    listed = {c.id for _, policy in loaded for c in policy.campaigns}
    unknown = sorted(chosen - listed)
    if unknown:
        raise UsageError(
            f"--campaign {', '.join(unknown)}: no policy given lists it "
            f"(they list: {', '.join(sorted(listed))})"
        )
    kept = []
    for path, policy in loaded:
        campaigns = tuple(c for c in policy.campaigns if c.id in chosen)
        if campaigns:
            # The policy's text (and so its hash and approval) is unchanged: only what
            # this run does with it is narrowed.
            kept.append((path, policy.model_copy(update={"campaigns": campaigns})))
    return kept


def _combined_line(reports: list[dict[str, Any]], policies: int, budget: BatchBudget) -> None:
    def total(key: str, *, interrupted: bool | None = None) -> int:
        return sum(
            int(r["totals"].get(key, 0)) for r in reports
            if interrupted is None or bool(r.get("interrupted")) == interrupted
        )

    # In an interrupted run, what failed is what the stop left (its summary says "not
    # done"): counted apart from the failures of the runs that ended.
    shown = ", ".join(
        f"{key} {total(key, interrupted=False if key == 'failed' else None)}"
        for key in ("listed", *FINAL_STATES)
    )
    pending = total("pending")
    if pending:
        shown += f", pending {pending}"
    not_done = total("failed", interrupted=True)
    if not_done:
        shown += f", not done {not_done}"
    reconciled = total("reconciled")  # not listed: apart from the counts above
    if reconciled:
        shown += f"; reconciled {reconciled}"
    # A campaign can fail with no attempt failed (one it could not list): said here too,
    # or the line reads "failed 0" beside exit 1. One only the stop failed was
    # interrupted, as its policy's summary says.
    broken = Counter(
        status for r in reports for c in r.get("campaigns", [])
        if (status := shown_status(c, bool(r.get("interrupted")))) in ("failed", "aborted")
    )
    for status, n in sorted(broken.items()):
        shown += f"; {n} campaign{'s' if n != 1 else ''} {status}"
    click.echo(f"all {len(reports)} of {policies} policies: {shown}")
    stopped = any((r.get("batch_limit") or {}).get("stopped") for r in reports)
    if stopped or (budget.spent and len(reports) < policies):
        left = policies - len(reports)
        not_started = f", {left} polic{'ies' if left != 1 else 'y'} not started" if left else ""
        click.echo(
            f"stopped after {budget.sent} batches in all (--max-batches {budget.limit}"
            f"{not_started}); run again to continue"
        )


def _run_one(
    policy: Policy,
    settings: Settings,
    state_dir: StateLocation,
    context: RunContextFilter,
    stderr: Console,
    live: bool,
    budget: BatchBudget,
    limits: HostLimits,
) -> tuple[dict[str, Any], RunMonitor, AuthError | None]:
    run_id = new_run_id()
    context.run_id = run_id
    progress = TerminalProgress(stderr) if live else LogProgress()
    # A 409 is how a dialing campaign answers; where the policy pauses or skips it,
    # that is expected, not an error.
    dialing = {c.id for c in policy.campaigns if c.on_active != "fail"}
    monitor = RunMonitor([progress], expected_409=dialing)
    # A state folder that belongs to another target refuses the run before any request.
    check_state_target(state_dir, target_of(policy, settings))
    # So does a filter or transform that cannot be built (a plugin's missing file, say):
    # each campaign's own are built now, once, and the run uses them.
    stages = {
        campaign.id: build_pipeline_stages(BuildContext(policy=policy, campaign_id=campaign.id))
        for campaign in policy.campaigns
    }
    with connect(policy, settings, on_request=monitor.on_request, check_credentials=False,
                 limits=limits) as conn:
        rate_limit = _RateLimitReport(conn.limiter, limits, limit_host(policy, settings))
        for value in conn.secrets.values():
            register_secret(value)
        sinks = build_sinks(BuildContext(policy=policy, secrets=conn.secrets, webhook_url=conn.webhook_url))
        check_sink_routes(state_dir, sinks)  # pending events with nowhere to go: refused now
        # After the sinks: a bad webhook secret is refused before any request.
        conn.check_credentials()
        with progress:
            result = run_policy(
                policy, backend=conn.backend, sinks=sinks, state_dir=state_dir,
                observer=monitor, run_id=run_id, target=conn.target,
                on_report=lambda report: rate_limit.add(extend_report(report, monitor)),
                budget=budget, stages=stages, refused=conn.credentials_refused,
            )
        refused = conn.credentials_refused()
    return result.report, monitor, refused


class _RateLimitReport:
    """The run report's ``rate_limit``: the rate the run started and ended at, which an
    earlier policy of the command on the same host may have lowered."""

    def __init__(self, limiter: RateLimiter | None, limits: HostLimits, host: str | None) -> None:
        self._limiter = limiter
        self._start = limiter.current_rate if limiter is not None else None
        self._shared = host is not None and limits.shared(host)

    def add(self, report: dict[str, Any]) -> dict[str, Any]:
        if self._limiter is not None and self._start is not None:
            report["rate_limit"] = {
                "ceiling": self._limiter.ceiling,
                "start": round(self._start, 6),
                "end": round(self._limiter.current_rate, 6),
                "shared": self._shared,
            }
        return report


def _signing_key() -> Ed25519PrivateKey | None:
    """The key ARCHIVER_SIGNING_KEY names, read before any request (a bad one stops the run)."""
    named = os.environ.get(SIGNING_KEY_ENV, "").strip()
    if not named:
        return None
    # Imported here: cryptography's bindings cost a run's start-up a tenth of a second,
    # and most runs sign nothing.
    from archiver.audit import digest

    return digest.load_private_key(Path(named))


def _sign_audit_logs(policy: Policy, key: Ed25519PrivateKey, run_id: str) -> None:
    """A signed digest of each of the policy's audit logs as the run left it."""
    from archiver.audit import digest

    for written_path in audit_logs(policy):
        path = policy.resolve(written_path, what="audit log")
        if path.exists():
            log = AuditLog(path)
            written = digest.write_digest(path, key, run_id=run_id, tail=log.tail(),
                                          created_at=now())
            logger.info("audit log %s: signed digest %s", path, written.name)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        again = "run again (it archives nothing twice)"
        raise storage_error("cannot write", path, err, retry=again) from err


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
