"""Every stage type the engine can build, in one registry.

Built-in stages are listed here by hand; third-party stages come through the
entry-point group ``archiver.stages`` (entry-point name = the ``type`` used in a
policy; the object it points at satisfies :class:`StagePlugin`). Plugins are
loaded one by one: a broken one is reported by name and the others still load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from archiver.engine.backend import RecordField
from archiver.engine.building import BuildContext as BuildContext  # re-exported for callers
from archiver.engine.protocols import Filter, Sink, StageKind, StagePlugin, Transform
from archiver.errors import PluginError
from archiver.policy.model import (
    AnonymizedFilter,
    AuditLogSink,
    FileSink,
    OutcomeFilter,
    PluginStage,
    RetentionTransform,
    WebhookSink,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "archiver.stages"


Builder = Callable[[Any, BuildContext], Any]


def _outcome(spec: OutcomeFilter, ctx: BuildContext) -> Filter:
    from archiver.stages.filters.outcome import Outcome

    return Outcome(spec)


def _anonymized(spec: AnonymizedFilter, ctx: BuildContext) -> Filter:
    from archiver.stages.filters.anonymized import Anonymized

    return Anonymized(spec, ctx.campaign_id)


def _retention(spec: RetentionTransform, ctx: BuildContext) -> Transform:
    from archiver.stages.transforms.retention import Retention

    return Retention(spec)


def _webhook(spec: WebhookSink, ctx: BuildContext) -> Sink:
    from archiver.stages.sinks.webhook import Webhook

    return Webhook.from_spec(spec, ctx)


def _audit_log(spec: AuditLogSink, ctx: BuildContext) -> Sink:
    from archiver.stages.sinks.audit_log import AuditLogStage

    return AuditLogStage.from_spec(spec, ctx)


def _file(spec: FileSink, ctx: BuildContext) -> Sink:
    from archiver.stages.sinks.file import FileArchive

    return FileArchive.from_spec(spec, ctx)


BUILTIN: dict[StageKind, dict[str, Builder]] = {
    "source": {},
    "filter": {"outcome": _outcome, "anonymized": _anonymized},
    "transform": {"retention": _retention},
    "sink": {"webhook": _webhook, "audit_log": _audit_log, "file": _file},
}


def fields_read(kind: StageKind, spec: Any) -> frozenset[RecordField]:
    """The record fields a filter or transform of ``spec`` reads (validation compares them
    with what the policy's backend provides). A plugin says so with a ``reads``
    attribute; one that does not is taken to read nothing a backend may lack."""
    if isinstance(spec, OutcomeFilter):
        from archiver.stages.filters.outcome import Outcome

        return Outcome.reads(spec)
    if isinstance(spec, AnonymizedFilter):
        from archiver.stages.filters.anonymized import Anonymized

        return Anonymized.reads(spec)
    if isinstance(spec, RetentionTransform):
        from archiver.stages.transforms.retention import Retention

        return Retention.reads(spec)
    if isinstance(spec, PluginStage):
        plugin = plugins().plugins[kind].get(spec.type)
        declared = getattr(plugin, "reads", ()) if plugin is not None else ()
        return frozenset(declared)
    return frozenset()


@dataclass
class PluginSet:
    plugins: dict[StageKind, dict[str, StagePlugin]]
    errors: dict[str, str]


@cache
def plugins() -> PluginSet:
    """Load third-party stages once; a plugin that fails is reported, not fatal."""
    found: dict[StageKind, dict[str, StagePlugin]] = {k: {} for k in BUILTIN}
    errors: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            plugin = obj() if isinstance(obj, type) else obj
            kind = getattr(plugin, "kind", None)
            if kind not in found or not callable(getattr(plugin, "build", None)):
                raise PluginError("does not satisfy StagePlugin (needs `kind` and `build`)")
            if ep.name in BUILTIN[kind]:
                raise PluginError(f"type {ep.name!r} is built in and cannot be replaced")
            found[kind][ep.name] = plugin
        except Exception as err:  # a broken plugin must not take the others down
            errors[ep.name] = f"{type(err).__name__}: {err}"
            log.warning("stage plugin %r (%s) failed to load: %s", ep.name, ep.value, err)
    return PluginSet(found, errors)


def known_types(kind: StageKind) -> set[str]:
    """Stage types a policy may name for ``kind``: built-ins plus loaded plugins."""
    return set(BUILTIN[kind]) | set(plugins().plugins[kind])


def build(kind: StageKind, spec: Any, ctx: BuildContext) -> Any:
    """Build one stage from its policy spec."""
    type_name: str = spec.type
    if not isinstance(spec, PluginStage) and type_name in BUILTIN[kind]:
        return BUILTIN[kind][type_name](spec, ctx)
    plugin = plugins().plugins[kind].get(type_name)
    if plugin is None:
        broken = plugins().errors.get(type_name)
        why = f": plugin failed to load ({broken})" if broken else ""
        raise PluginError(f"unknown {kind} type {type_name!r}{why}")
    options = spec.options if isinstance(spec, PluginStage) else {}
    try:
        return plugin.build(options)
    except Exception as err:
        raise PluginError(f"{kind} plugin {type_name!r} failed to build: {err}") from err


def build_pipeline_stages(ctx: BuildContext) -> tuple[list[Filter], list[Transform]]:
    filters = [build("filter", spec, ctx) for spec in ctx.policy.filters]
    transforms = [build("transform", spec, ctx) for spec in ctx.policy.transforms]
    return filters, transforms


def build_sinks(ctx: BuildContext) -> list[Sink]:
    return [build("sink", spec, ctx) for spec in ctx.policy.sinks]
