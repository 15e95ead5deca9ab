"""The engine knows backends only through archiver.engine.backend, and the engine and the
stages import each other without cycles (every import counted: module level, inside
functions, and under TYPE_CHECKING)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import archiver

PACKAGE = Path(archiver.__file__).parent
BACKEND_PACKAGES = ("archiver.backends", "archiver.cxone")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(*folders: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported(path: Path, known: set[str] | None = None) -> set[str]:
    """Every module ``path`` imports; ``from a import b`` counts ``a.b`` when that is a
    module of ``known``."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            for alias in node.names:
                if known is not None and f"{base}.{alias.name}" in known:
                    out.add(f"{base}.{alias.name}")
    return out


def test_no_engine_module_imports_a_backend():
    offenders = {
        name: sorted(m for m in imported(path) if m.startswith(BACKEND_PACKAGES))
        for name, path in modules_under("engine").items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_engine_and_the_stages_import_without_cycles():
    modules = modules_under("engine", "stages")
    known = set(modules)
    graph = {
        name: {m for m in imported(path, known) if m in known and m != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("module", [
    "archiver.backends.catalog", "archiver.backends.cxone", "archiver.backends.campaign_archive",
    "archiver.policy", "archiver.connect", "archiver.engine.runner", "archiver.engine.campaign",
    "archiver.stages.registry", "archiver.stages.sinks.file", "archiver.stages.sinks.webhook",
    "archiver.stages.sinks.audit_log", "archiver.review.plan",
])
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
