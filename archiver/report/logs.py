"""Log lines of a run: text or JSON, each with the run id and the campaign.

The campaign comes from a context variable that the run's observer sets in the
campaign's own thread (:func:`campaign_scope`). Threads of the HTTP pool serve
every campaign, so for their records the campaign is taken from the engine's
message convention (``"campaign %s ..."``) instead.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Literal

from archiver.report.redact import install_everywhere, install_on, printable

LogFormat = Literal["text", "json"]

_campaign: contextvars.ContextVar[str | None] = contextvars.ContextVar("campaign", default=None)


def set_campaign(campaign_id: str | None) -> None:
    """Tag log records of the calling thread with ``campaign_id`` (None clears it)."""
    _campaign.set(campaign_id)


def current_campaign() -> str | None:
    return _campaign.get()


def _campaign_of(record: logging.LogRecord) -> str | None:
    found = _campaign.get()
    if found is not None:
        return found
    msg, args = record.msg, record.args
    if isinstance(msg, str) and msg.startswith("campaign %s") and isinstance(args, tuple) and args:
        return str(args[0])
    return None


class RunContextFilter(logging.Filter):
    """Adds ``run_id`` and ``campaign`` to every record (None when not known)."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        if getattr(record, "campaign", None) is None:
            record.campaign = _campaign_of(record)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``time LEVEL run=ID campaign=ID logger: message``.

    The message is escaped by the redacting filter; the run and campaign ids are escaped
    here, so a record is one line whatever they hold (``validate`` refuses a campaign id
    with a control character; this holds whatever reaches the log).
    """

    def format(self, record: logging.LogRecord) -> str:
        run_id = printable(str(getattr(record, "run_id", None) or "-"))
        campaign = printable(str(getattr(record, "campaign", None) or "-"))
        line = (
            f"{_timestamp(record)} {record.levelname:<7} run={run_id}"
            f" campaign={campaign} {record.name}: {record.getMessage()}"
        )
        extra = _exception_text(self, record)
        return f"{line}\n{extra}" if extra else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; keys are stable for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": getattr(record, "run_id", None),
            "campaign": getattr(record, "campaign", None),
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        extra = _exception_text(self, record)
        if extra:
            entry["exception"] = extra
        return json.dumps(entry, ensure_ascii=False)


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [p for p in (record.exc_text, record.stack_info and formatter.formatStack(record.stack_info)) if p]
    return "\n".join(parts)


class CallbackHandler(logging.Handler):
    """Hands formatted lines to ``write`` (a rich console, so lines land above a live display)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)


def level_from(log_level: str | None, verbose: int, quiet: bool) -> int:
    """``--log-level`` wins; else ``-v`` means DEBUG; else INFO, or WARNING when quiet."""
    if log_level:
        return logging.getLevelNamesMapping()[log_level.upper()]
    if verbose:
        return logging.DEBUG
    return logging.WARNING if quiet else logging.INFO


def configure_logging(
    *,
    fmt: LogFormat = "text",
    level: int = logging.INFO,
    stream: IO[str] | None = None,
    write: Callable[[str], None] | None = None,
) -> RunContextFilter:
    """Replace the root logger's handlers with one that writes to ``write`` or ``stream``.

    Returns the context filter; set its ``run_id`` when a run starts.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if write is not None:
        handler = CallbackHandler(write)
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    context = RunContextFilter()
    # Context first so the formatter sees it; redaction on the same handler (and all others).
    handler.addFilter(context)
    install_on(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    install_everywhere()
    return context


__all__ = [
    "CallbackHandler",
    "JsonFormatter",
    "LogFormat",
    "RunContextFilter",
    "TextFormatter",
    "configure_logging",
    "current_campaign",
    "level_from",
    "set_campaign",
]
