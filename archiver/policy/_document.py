"""Where things are in a policy file, so every diagnostic can point at its line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from archiver.errors import Diagnostic
from archiver.policy.paths import confine

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Spot:
    """A 1-based line and column."""

    line: int
    col: int


START = Spot(1, 1)


@dataclass(slots=True)
class Positions:
    """Line and column of every mapping key and every value, by JSON path."""

    keys: dict[JsonPath, Spot] = field(default_factory=dict)
    values: dict[JsonPath, Spot] = field(default_factory=dict)

    def value(self, path: JsonPath) -> Spot:
        """Where the value at ``path`` starts, or its nearest ancestor's when it has none."""
        for end in range(len(path), -1, -1):
            spot = self.values.get(path[:end])
            if spot is not None:
                return spot
        return START

    def key(self, path: JsonPath) -> Spot:
        """Where the key naming ``path`` is; for list items and the root, their value."""
        return self.keys.get(path) or self.value(path)


def dotted(path: JsonPath) -> str:
    """``("filters", 0, "approved")`` -> ``filters[0].approved``, as a policy author reads it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """One policy being checked: how to name it, where its values are, where its paths lead."""

    file: str  # how diagnostics name the policy
    positions: Positions
    base_dir: Path  # absolute folder relative paths in the policy resolve against
    display_dir: Path  # the same folder as diagnostics spell it (as the user named the file)
    root: Path  # the policy's repository: every path it names must stay inside (paths.py)

    def at_value(self, path: JsonPath, code: str, message: str) -> Diagnostic:
        spot = self.positions.value(path)
        return Diagnostic(self.file, spot.line, spot.col, code, message)

    def at_key(self, path: JsonPath, code: str, message: str) -> Diagnostic:
        spot = self.positions.key(path)
        return Diagnostic(self.file, spot.line, spot.col, code, message)

    def resolve(self, written: str) -> Path:
        """A path written in the policy, resolved the way the run resolves it."""
        path = Path(written)
        return path if path.is_absolute() else self.base_dir / path

    def confine(self, written: str, *, what: str) -> Path:
        """A path written in the policy, resolved with symlinks followed, the way the run
        opens it; OutsideRepository when it leads outside the policy's repository."""
        return confine(self.root, self.base_dir, written, what=what)

    def show(self, written: str) -> str:
        """A path written in the policy, spelt for a diagnostic next to the policy's name."""
        path = Path(written)
        return str(path) if path.is_absolute() else os.path.normpath(self.display_dir / path)
