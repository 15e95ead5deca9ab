"""No module outside ``archiver/stages/`` names a built-in stage's class or imports its
module: validation, plan, diff, test and run know stages only through the registry."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from archiver.stages import registry

PACKAGE = Path(__file__).resolve().parents[2] / "archiver"
STAGES = PACKAGE / "stages"


def _builtin_modules() -> dict[str, set[str]]:
    """Each built-in stage type's module, with every class it defines."""
    found: dict[str, set[str]] = {}
    for kind, names in registry.registry().builtin.items():
        for name in names:
            module = registry.registry().types[kind][name].options.__module__
            tree = ast.parse(Path(sys.modules[module].__file__ or "").read_text())
            found[module] = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    return found


def _named(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.rsplit(".", 1)[-1])
    return names


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_builtin_stages_are_known_and_each_defines_its_classes() -> None:
    modules = _builtin_modules()
    assert len(modules) == 6
    classes = set().union(*modules.values())
    # The options models and the stages themselves, as a reader would name them.
    assert {"OutcomeFilter", "Outcome", "WebhookSink", "Webhook", "AuditLogSink",
            "AuditLogStage", "FileSink", "FileArchive", "RetentionTransform",
            "Retention", "AnonymizedFilter", "Anonymized"} <= classes


def test_no_module_outside_stages_names_a_builtin_stage_class() -> None:
    modules = _builtin_modules()
    classes = set().union(*modules.values())
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STAGES in path.parents:
            continue
        tree = ast.parse(path.read_text())
        named = sorted(_named(tree) & classes)
        imported = sorted(m for m in _imported(tree) if m in modules)
        if named or imported:
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {named + imported}")
    assert offenders == []
