"""Install stage types for a test without installing a distribution: the registry is
replaced by one holding archiver's own types plus the given ones, as if each came
through the ``archiver.stages`` entry-point group."""

from __future__ import annotations

import pytest

from archiver.stages import registry
from archiver.stages.descriptor import StageType


def install(monkeypatch: pytest.MonkeyPatch, *extra: StageType) -> registry.Registry:
    real = registry.registry()
    types = {kind: dict(found) for kind, found in real.types.items()}
    for stage in extra:
        types[stage.kind][stage.name] = stage
    fake = registry.Registry(types, dict(real.builtin), dict(real.errors))
    monkeypatch.setattr(registry, "registry", lambda: fake)
    return fake
