"""Characters YAML refuses to read, found before it reads anything, each at its line."""

from __future__ import annotations

import re

from archiver.errors import Diagnostic
from archiver.policy import _codes as codes

# What YAML refuses to read (PyYAML's Reader.NON_PRINTABLE): C0 controls but tab and line
# breaks, DEL, C1 controls but NEL, surrogates, U+FFFE and U+FFFF.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]"
)
# Line breaks as YAML counts them, so a position agrees with the marks of other errors.
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_CONTROL_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL"}


def control_characters(text: str, file: str, kind: str = "policy") -> list[Diagnostic]:
    """One diagnostic per line holding a character YAML refuses (a NUL byte, an escape).

    PyYAML refuses them before it reads a line and says only "position 436": point at
    the line and column instead, the way every other problem is reported. ``kind`` names
    what the text is (a policy, a hold file, a policy test file).
    """
    found: list[Diagnostic] = []
    line, line_start, last_line = 1, 0, 0
    breaks = _LINE_BREAK.finditer(text)
    upcoming = next(breaks, None)
    for match in _NON_PRINTABLE.finditer(text):
        while upcoming is not None and upcoming.end() <= match.start():
            line, line_start = line + 1, upcoming.end()
            upcoming = next(breaks, None)
        if line == last_line:
            continue
        last_line = line
        point = ord(match.group())
        name = f" ({_CONTROL_NAMES[point]})" if point in _CONTROL_NAMES else ""
        found.append(Diagnostic(
            file, line, match.start() - line_start + 1, codes.CONTROL_CHARACTER,
            f"character U+{point:04X}{name} is not allowed in a {kind}; "
            f"remove it (a {kind} is plain text)",
        ))
    return found
