"""Keeps secrets out of every log line, whoever writes it.

Secret values are registered once, where they are read (client secret, webhook
secrets, access tokens as they are issued). A :class:`RedactingFilter` on each
handler replaces them, and anything shaped like a credential (``Bearer x``,
``access_token=x``, ``client_secret=x``), with ``***``. It sits on handlers, not
loggers, because records from library loggers (urllib3, requests) reach the
root logger's handlers without passing through any archiver logger's filters.

What a server sends is untrusted text too: a terminal escape or a newline in an
error message, a reason or an attempt id could repaint a terminal or forge a log
line. :func:`printable` escapes them, and :func:`shown` (secrets masked, then
escaped) is applied where text is displayed: log lines, the run summary, the
command line's error message.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# Shorter values would mask ordinary words and numbers in unrelated text; a secret
# that short is refused where it is read (archiver.settings.check_secret).
MIN_SECRET_CHARS = 8
# C0 and C1 controls, DEL, line and paragraph separators and bidirectional overrides:
# characters that move a terminal's cursor, start an escape sequence, break a log line,
# or make text read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_KEYS = r"access_token|refresh_token|id_token|client_secret|password|secret|token"
_PATTERNS = (
    # Authorization header values, in any log or echoed request.
    re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/=]+"),
    # Form and query parameters: client_secret=...&, access_token=...
    re.compile(rf"(?i)\b({_KEYS})(=)[^&\s'\",;]+"),
    # JSON members and Python reprs: "access_token": "...", 'client_secret': '...'
    re.compile(rf"(?i)([\"']?(?:{_KEYS})[\"']?)(\s*:\s*)[\"'][^\"']*[\"']"),
)

_lock = threading.Lock()
_secrets: set[str] = set()
_compiled: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on; safe to call from any thread."""
    global _compiled
    if value is None or len(value) < MIN_SECRET_CHARS:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _compiled = re.compile("|".join(re.escape(s) for s in ordered))


def forget_secrets() -> None:
    """Drop every registered value (between independent runs in one process, in tests)."""
    global _compiled
    with _lock:
        _secrets.clear()
        _compiled = None


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``).

    Applying it twice changes nothing more: its output has no control characters.
    ``keep_newlines`` keeps line breaks, for tracebacks.
    """
    pattern = _UNPRINTABLE_BUT_NEWLINE if keep_newlines else _UNPRINTABLE
    return pattern.sub(_escape, text)


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: an argument, a variable or a file read
    with ``surrogateescape`` keeps bytes that are not UTF-8 as lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(text: str) -> str:
    """``text`` as it may be displayed: secrets masked, control characters escaped."""
    return printable(redact(text))


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-shaped substring masked."""
    compiled = _compiled
    if compiled is not None:
        text = compiled.sub(MASK, text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception and stack text with secrets masked and
    control characters escaped (one log record is one line).

    The record is rewritten in place, so every handler after this one sees the
    masked text too; it never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: keep what we can show
            message = f"{record.msg!s} {record.args!r}"
        record.msg = shown(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = printable(redact(record.exc_text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = printable(redact(record.stack_info), keep_newlines=True)
        return True


def install_on(handler: logging.Handler) -> None:
    """Add the redacting filter to ``handler`` unless it already has one."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())


def install_everywhere() -> None:
    """Put the filter on the root logger's handlers and on those of every known logger."""
    for handler in logging.getLogger().handlers:
        install_on(handler)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                install_on(handler)
