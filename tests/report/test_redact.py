"""Secrets never reach a log line, whichever logger writes it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from archiver.report import redact
from archiver.report.logs import configure_logging
from archiver.report.redact import MASK, RedactingFilter, register_secret

SECRET = "Xq9-client-secret-77aa"


@pytest.fixture(autouse=True)
def clean_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    redact.forget_secrets()
    yield
    redact.forget_secrets()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc-123_x", f"Authorization: Bearer {MASK}"),
        ("sent bearer abc.def", f"sent bearer {MASK}"),
        (
            "grant_type=client_credentials&client_id=me&client_secret=s3cr3t&scope=x",
            f"grant_type=client_credentials&client_id=me&client_secret={MASK}&scope=x",
        ),
        ("url?access_token=tok123 end", f"url?access_token={MASK} end"),
        ('{"access_token": "tok123", "expires_in": 30}', f'{{"access_token": {MASK}, "expires_in": 30}}'),
        ("{'client_secret': 'abc'}", f"{{'client_secret': {MASK}}}"),
        ("nothing secret here: campaign c-1 listed 5", "nothing secret here: campaign c-1 listed 5"),
    ],
)
def test_credential_shaped_text_is_masked(text, expected):
    assert redact.redact(text) == expected


def test_registered_values_are_masked_anywhere_and_short_values_ignored():
    register_secret(SECRET)
    register_secret("e")  # too short to mask safely: it would eat every word
    register_secret("seven77")  # one short of the minimum
    register_secret(None)
    assert redact.redact(f"failed with {SECRET}!{SECRET}") == f"failed with {MASK}!{MASK}"
    assert redact.redact("the seven77 secrets here") == "the seven77 secrets here"


def test_a_secret_containing_another_is_masked_whole():
    register_secret("abcdefgh")
    register_secret("xxabcdefghyy")
    assert redact.redact("1 xxabcdefghyy 2 abcdefgh") == f"1 {MASK} 2 {MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("clear\x1b[2Jscreen", "clear\\x1b[2Jscreen"),
        ("two\nlines\r\ttab", "two\\nlines\\r\\ttab"),
        ("bell\x07 del\x7f c1\x9b", "bell\\x07 del\\x7f c1\\x9b"),
        ("bidi \u202eevil\u2066", "bidi \\u202eevil\\u2066"),
        ("line\u2028sep", "line\\u2028sep"),
        ("ünïcödé 名前 ok", "ünïcödé 名前 ok"),
    ],
)
def test_printable_escapes_what_a_terminal_would_obey(text, expected):
    assert redact.printable(text) == expected
    assert redact.printable(expected) == expected  # escaping twice changes nothing more


def test_log_lines_show_server_text_escaped_and_stay_one_line():
    stream = io.StringIO()
    configure_logging(fmt="text", stream=stream)
    logging.getLogger("test.redact.escape").error(
        "campaign %s failed: %s", "c-1", "boom\x1b]0;pwned\x07\nFAKE INFO line"
    )
    out = stream.getvalue()
    assert out.count("\n") == 1, out
    assert "\x1b" not in out and "\x07" not in out
    assert "boom\\x1b]0;pwned\\x07\\nFAKE INFO line" in out


def test_filter_masks_arguments_exceptions_and_stacks():
    register_secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redact.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s and %d", SECRET, 3)
        try:
            raise ValueError(f"boom {SECRET}")
        except ValueError:
            logger.exception("failed")
        logger.error("here", stack_info=True, extra={"x": SECRET})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert f"token {MASK} and 3" in out
    assert f"ValueError: boom {MASK}" in out


def test_library_loggers_are_masked_through_the_root_handlers():
    register_secret(SECRET)
    stream = io.StringIO()
    configure_logging(fmt="json", level=logging.DEBUG, stream=stream)
    # urllib3 and requests log through their own loggers, which only reach the root's handlers.
    logging.getLogger("urllib3.connectionpool").debug('"POST /token?client_secret=%s HTTP/1.1" 200', SECRET)
    logging.getLogger("requests").debug("Authorization: Bearer abc.def.ghi")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert SECRET not in stream.getvalue() and "abc.def.ghi" not in stream.getvalue()
    assert lines[0]["logger"] == "urllib3.connectionpool"


def test_handlers_added_elsewhere_get_the_filter_too():
    stream = io.StringIO()
    other = logging.getLogger("test.redact.other")
    handler = logging.StreamHandler(stream)
    other.addHandler(handler)
    try:
        configure_logging(stream=io.StringIO())
        register_secret(SECRET)
        other.warning("oops %s", SECRET)
    finally:
        other.removeHandler(handler)
    assert stream.getvalue() == f"oops {MASK}\n"
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
