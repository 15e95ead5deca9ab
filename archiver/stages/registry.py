"""Every stage type, through one door: the entry-point group ``archiver.stages``.

archiver's own stages are registered there like anyone else's (see pyproject.toml);
an entry point names a :class:`StageType`. Entry points
load one by one: a broken one is reported by name and the others still load, and a
third-party type may not take a built-in name. A type is checked as it loads (its options model has a JSON Schema, its hooks are
callables), so one that would fail later is refused here, by name. Everything else
asks this module:
which types exist, what a policy's stage item means (:func:`spec`), what a type
reads, checks and receives (:func:`descriptor`), and how to build it (:func:`build`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from archiver.engine.backend import RecordField
from archiver.engine.building import BuildContext as BuildContext  # re-exported for callers
from archiver.engine.protocols import Filter, Sink, Transform
from archiver.errors import PluginError
from archiver.stages.descriptor import KINDS, StageKind, StageType, options_digest
from archiver.stages.guard import GUARDS, a_ctrl_c, described

if TYPE_CHECKING:
    from archiver.policy.model import Policy, StageSpec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "archiver.stages"
# archiver's own distribution: its entry points are the built-in stage types.
OWN_DISTRIBUTION = "cxone-archiver"  # pyproject.toml's project.name

# What each kind's stage must satisfy once built.
PROTOCOLS: dict[StageKind, type] = {"filter": Filter, "transform": Transform, "sink": Sink}
# What each protocol asks for, to name what a stage lacks.
MEMBERS: dict[StageKind, tuple[str, ...]] = {
    "filter": ("name", "check"), "transform": ("name", "apply"),
    "sink": ("name", "events", "render", "deliver"),
}
# The policy list each kind is written in.
LISTS: dict[StageKind, str] = {"filter": "filters", "transform": "transforms", "sink": "sinks"}


class UnknownOptions(BaseModel):
    """The options of a stage type no installed plugin provides (validation reports it)."""

    model_config = ConfigDict(frozen=True, extra="allow")


@dataclass(eq=False)
class Registry:
    types: dict[StageKind, dict[str, StageType]]
    builtin: dict[StageKind, frozenset[str]]
    errors: dict[str, str]  # entry-point name -> why it failed to load


def _is_own(ep: EntryPoint) -> bool:
    if ep.value.startswith("archiver.stages."):
        return True  # known without reading the distribution's metadata
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return name == OWN_DISTRIBUTION


def _load(ep: EntryPoint) -> StageType:
    obj = ep.load()
    if not isinstance(obj, StageType):
        raise PluginError(f"names a {type(obj).__name__}, not a stage type: the entry point "
                          "must name an archiver.stages.descriptor.StageType")
    problem = obj.problem()
    if problem is not None:
        raise PluginError(problem)
    return obj


@cache
def registry() -> Registry:
    """Load every stage type once; one that fails is reported, not fatal."""
    types: dict[StageKind, dict[str, StageType]] = {k: {} for k in KINDS}
    builtin: dict[StageKind, set[str]] = {k: set() for k in KINDS}
    errors: dict[str, str] = {}
    points = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: not _is_own(ep))
    for ep in points:
        try:
            stage = _load(ep)
            if stage.kind not in types:
                raise PluginError(f"unknown kind {stage.kind!r} (one of {', '.join(KINDS)})")
            if stage.name in types[stage.kind]:
                if stage is types[stage.kind][stage.name]:
                    continue  # the same type reached twice (an editable and a plain install)
                taken = "built in" if stage.name in builtin[stage.kind] else "already registered"
                raise PluginError(f"{stage.kind} type {stage.name!r} is {taken}")
            types[stage.kind][stage.name] = stage
            if _is_own(ep):
                builtin[stage.kind].add(stage.name)
        except BaseException as err:  # a broken plugin must not take the others down
            if a_ctrl_c(err):
                raise
            errors[ep.name] = described(err)
            log.warning("stage plugin %r (%s) failed to load: %s", ep.name, ep.value,
                        described(err))
    return Registry(types, {k: frozenset(v) for k, v in builtin.items()}, errors)


def reload() -> None:
    """Forget what was loaded (tests install plugins while running)."""
    registry.cache_clear()


def known_types(kind: StageKind) -> set[str]:
    """Stage types a policy may name for ``kind``."""
    return set(registry().types[kind])


def builtin_types(kind: StageKind) -> frozenset[str]:
    return registry().builtin[kind]


def all_types() -> Iterator[StageType]:
    for kind in KINDS:
        yield from registry().types[kind].values()


def descriptor(kind: StageKind, name: str) -> StageType | None:
    return registry().types[kind].get(name)


def load_error(name: str) -> str | None:
    """Why the entry point ``name`` failed to load, if it did."""
    return registry().errors.get(name)


def spec(kind: StageKind, item: Any) -> StageSpec:
    """A policy's stage item (a mapping, as written; or options built in code) as a
    :class:`StageSpec`. Options of an unknown type are kept as written; validation
    reports the type."""
    from archiver.policy.model import StageSpec

    if isinstance(item, StageSpec):
        return item
    if isinstance(item, BaseModel):
        for stage in registry().types[kind].values():
            if type(item) is stage.options:
                return StageSpec(kind=kind, type=stage.name, options=item)
        raise PluginError(f"{type(item).__name__} is not the options of any {kind} type")
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        raise ValueError(f"a {kind} needs a `type`")
    name: str = item["type"]
    found = descriptor(kind, name)
    if found is None:
        return StageSpec(kind=kind, type=name,
                         options=UnknownOptions.model_validate(dict(item.get("options") or {})))
    raw = dict(item) if found.inline else dict(item.get("options") or {})
    return StageSpec(kind=kind, type=name, options=found.options.model_validate(raw))


def stage_type(item: StageSpec) -> StageType | None:
    return descriptor(item.kind, item.type)


def fields_read(item: StageSpec) -> frozenset[RecordField]:
    """The record fields a stage of ``item`` reads."""
    stage = stage_type(item)
    return stage.reads(item.options) if stage is not None else frozenset()


def build(item: StageSpec, ctx: BuildContext) -> Any:
    """Build one stage from its policy item, checked against its kind's protocol."""
    stage = stage_type(item)
    if stage is None:
        broken = load_error(item.type)
        why = f": plugin failed to load ({broken})" if broken else ""
        raise PluginError(f"unknown {item.kind} type {item.type!r}{why}")
    context = ctx.for_stage(item.type)
    try:
        built = stage.factory(item.options, context)
    except BaseException as err:
        if item.type in builtin_types(item.kind) or a_ctrl_c(err):
            raise
        raise PluginError(
            f"{item.kind} plugin {item.type!r} failed to build: {described(err)}") from err
    protocol = PROTOCOLS[item.kind]
    missing = [m for m in MEMBERS[item.kind] if not hasattr(built, m)]
    wrong = None if missing else _wrong_member(item.kind, built)
    if missing or wrong is not None or not isinstance(built, protocol):
        raise PluginError(f"{item.kind} type {item.type!r} built a {type(built).__name__}, "
                          f"which is not a {protocol.__name__} (see archiver.engine.protocols)"
                          + (f"; it lacks {', '.join(f'`{m}`' for m in missing)}" if missing
                             else f": its {wrong}" if wrong is not None else ""))
    if item.type not in builtin_types(item.kind):
        built = GUARDS[item.kind](built, item.kind, item.type)
    if item.kind == "sink" and not isinstance(getattr(built, "identity", None), str):
        # The outbox names a sink by what it delivers to; a plugin sink that does not say
        # is named by its type and options, so reordering sinks never mixes their events.
        with suppress(AttributeError):  # else the outbox names it by its type and place
            built.identity = f"{item.type}:{options_digest(item.options)}"  # type: ignore[attr-defined]
    return built


def _wrong_member(kind: StageKind, built: object) -> str | None:
    """Which of a built stage's members is not of the kind its protocol asks for, and
    what it is instead; None when each is (a member set to None passes ``hasattr``)."""
    for member in MEMBERS[kind]:
        value = getattr(built, member)
        if member == "name":
            if not isinstance(value, str) or not value:
                return f"`name` is {value!r}, not text"
        elif member == "events":
            if not isinstance(value, set | frozenset | list | tuple) or not all(
                    isinstance(e, str) for e in value):
                return f"`events` is {value!r}, not a set of event kinds"
        elif not callable(value):
            return f"`{member}` is {value!r}, not a method"
    return None


def build_pipeline_stages(ctx: BuildContext) -> tuple[list[Filter], list[Transform]]:
    filters = [build(item, ctx) for item in ctx.policy.filters]
    transforms = [build(item, ctx) for item in ctx.policy.transforms]
    return filters, transforms


def build_sinks(ctx: BuildContext) -> list[Sink]:
    return [build(item, ctx) for item in ctx.policy.sinks]


@dataclass(frozen=True)
class Placed:
    """A stage item of a policy with where it is written: ``at`` is its item's path
    (``("filters", 0)``), ``options_at`` the path its options are written under."""

    kind: StageKind
    at: tuple[str, int]
    item: StageSpec
    stage: StageType | None  # None: no installed type has its name

    @property
    def options_at(self) -> tuple[str | int, ...]:
        inline = self.stage is None or self.stage.inline
        return self.at if inline else (*self.at, "options")


def placed(policy: Policy) -> Iterator[Placed]:
    """Every stage item of the policy, filters then transforms then sinks."""
    for kind in KINDS:
        list_key = LISTS[kind]
        for i, item in enumerate(getattr(policy, list_key)):
            yield Placed(kind, (list_key, i), item, stage_type(item))


def sinks_of(policy: Policy) -> Iterator[tuple[int, StageSpec, StageType]]:
    """The policy's sinks whose type is installed: (index, item, descriptor)."""
    for i, item in enumerate(policy.sinks):
        stage = stage_type(item)
        if stage is not None:
            yield i, item, stage


def audit_logs(policy: Policy) -> list[str]:
    """The audit log paths the policy's sinks append to, as written."""
    found = []
    for _, item, stage in sinks_of(policy):
        path = stage.audit_log(item.options)
        if path is not None:
            found.append(path)
    return found
