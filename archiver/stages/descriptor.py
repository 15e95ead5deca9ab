"""What a stage type is: one descriptor, the same for built-in and third-party stages.

A descriptor is what an entry point of the group ``archiver.stages`` points at. It
says the stage's kind and name, the pydantic model of its options (whose JSON Schema
goes into the policy schema, so ``validate`` and editors check them at their line),
the record fields it reads, how to build it from a :class:`BuildContext`, and what
review needs to know of it: checks of its options beyond the schema, and, for a sink,
the events it receives, its template and the secrets it needs. Validation, plan, diff,
test and run ask these questions of the descriptor; none of them knows a stage class.

Listing is not a stage kind: records come from the policy's backend
(``connection.api`` and ``source``), which the stages read as ``AttemptRecord``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from archiver.engine.backend import RecordField
from archiver.engine.building import BuildContext
from archiver.errors import TemplateError

if TYPE_CHECKING:
    from archiver.policy.model import Policy
    from archiver.templates import CompiledTemplate

StageKind = Literal["filter", "transform", "sink"]
KINDS: tuple[StageKind, ...] = ("filter", "transform", "sink")

# The names a policy's `type` may take (the policy schema's pattern).
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")

# A plugin's own finding, unless it names a code of its own.
PLUGIN_CHECK = "V024"

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """A problem a stage type finds in its options; ``at`` is the path under the stage's
    item in the policy (``("url",)`` is ``sinks[i].url``), ``()`` the item itself."""

    at: JsonPath
    message: str
    code: str = PLUGIN_CHECK


@dataclass(frozen=True)
class CheckContext:
    """What a stage type's :attr:`StageType.check` may consult besides its options."""

    policy: Policy
    index: int  # the stage's place in its list
    # A path the policy names, resolved as a run would; raises OutsideRepository when it
    # leads out of the policy's repository. (written, what) -> resolved path.
    confine: Callable[[str, str], Path]
    show: Callable[[str], str]  # a path as the policy's author knows it
    line_of: Callable[[JsonPath], int]  # the line of a path under the stage's item
    approved: frozenset[str] | None  # outcomes every filter approves; None: any
    known_outcomes: frozenset[str]  # codes the backend reports and the policy adds


def reads_nothing(options: Any) -> frozenset[RecordField]:
    return frozenset()


def no_findings(options: Any, ctx: CheckContext) -> Iterable[Finding]:
    return ()


def no_outcomes(options: Any) -> Iterable[tuple[str, JsonPath]]:
    return ()


def approves_all(options: Any) -> frozenset[str] | None:
    return None


def template_option(options: Any) -> str | None:
    """The ``template`` option, when the options have one."""
    value = getattr(options, "template", None)
    return value if isinstance(value, str) else None


def no_strings(options: Any) -> tuple[str, ...]:
    return ()


def nothing(options: Any) -> None:
    return None


def not_embedded(options: Any) -> bool:
    return False


def no_files(options: Any, campaign_id: str, batch_id: str, day: str) -> list[str]:
    return []


@dataclass(frozen=True)
class StageType:
    """One stage type. Only ``kind``, ``name``, ``options`` and ``factory`` are required;
    the rest has defaults that suit a stage with no such concern."""

    kind: StageKind
    name: str
    options: type[BaseModel]
    # (validated options, context) -> the stage: a Filter, Transform or Sink
    # (archiver.engine.protocols); what it returns is checked against the protocol.
    factory: Callable[[Any, BuildContext], object]
    summary: str = ""
    # Record fields it reads (validation refuses a policy whose backend lacks one).
    reads: Callable[[Any], frozenset[RecordField]] = reads_nothing
    # Advice shown when a field it reads is missing, by field.
    hints: Mapping[str, str] = field(default_factory=dict)
    # Problems in its options the schema cannot see (paths, URLs, secrets' names).
    check: Callable[[Any, CheckContext], Iterable[Finding]] = no_findings
    # At most one of this type in a policy: the code of the diagnostic when there are two.
    unique: str | None = None
    # Outcome codes its options name, with their paths under the item: each must be a
    # code the backend reports or the policy lists.
    outcomes: Callable[[Any], Iterable[tuple[str, JsonPath]]] = no_outcomes
    # A filter's approved outcomes (retention rules outside them never apply).
    approves: Callable[[Any], frozenset[str] | None] = approves_all

    # -- sinks ---------------------------------------------------------------------
    events: frozenset[str] = frozenset()  # event kinds it receives
    template: Callable[[Any], str | None] = template_option
    # One of archiver's packaged templates (archiver/templates/defaults: audit.json.j2,
    # webhook.json.j2) used when the options name none.
    default_template: str | None = None
    # The first sample it cannot render with ``template``: (error, event kind) or None.
    render_check: Callable[[CompiledTemplate, Any], tuple[TemplateError, str] | None] | None = None
    secret_envs: Callable[[Any], tuple[str, ...]] = no_strings  # variables holding its secrets
    embedded: Callable[[Any], bool] = not_embedded  # delivers to the built-in simulator
    audit_log: Callable[[Any], str | None] = nothing  # the hash-chained log it appends to
    note: Callable[[Any], str | None] = nothing  # a line for plan beyond its samples
    # Files a batch would leave (plan's sample event names them).
    sample_files: Callable[[Any, str, str, str], list[str]] = no_files

    inline: bool = False  # options beside ``type`` (built-ins) instead of under ``options``
    schema_def: str | None = None  # built-ins: their hand-written ``$defs`` entry

    def __post_init__(self) -> None:
        # ``reads`` written as the fields themselves (a set) is taken as they are.
        fields = self.reads
        if isinstance(fields, frozenset | set | tuple | list):
            fixed = frozenset(fields)
            object.__setattr__(self, "reads", lambda options: fixed)

    def problem(self) -> str | None:
        """Why this type cannot be used, if it cannot: checked as it loads, so a broken
        type is refused by name instead of failing every command later."""
        if not NAME.fullmatch(str(self.name)):
            return f"stage name {self.name!r} is not a name a policy can write"
        if not (isinstance(self.options, type) and issubclass(self.options, BaseModel)):
            return "`options` must be a pydantic model class"
        try:
            self.options.model_json_schema()
        except Exception as err:
            return f"its options model has no JSON Schema ({type(err).__name__}: {err})"
        hooks = ("factory", "reads", "check", "outcomes", "approves", "template",
                 "secret_envs", "embedded", "audit_log", "note", "sample_files")
        for hook in hooks:
            if not callable(getattr(self, hook)):
                return f"`{hook}` must be a function of the options"
        if self.default_template is not None:
            from archiver.templates.compiled import DEFAULTS_DIR

            if not (DEFAULTS_DIR / self.default_template).is_file():
                return (f"`default_template` {self.default_template!r} is not one of "
                        "archiver's packaged templates")
        return None

    def sample_check(self, template: CompiledTemplate, options: Any) -> tuple[TemplateError, str] | None:
        """The first sample event this sink receives that ``template`` cannot render."""
        if self.render_check is not None:
            return self.render_check(template, options)
        return render_events(template, self.events)


def render_events(
    template: CompiledTemplate, events: frozenset[str]
) -> tuple[TemplateError, str] | None:
    """Render each sample event of ``events``; the first failure, if any."""
    from archiver.templates import sample_events

    for event in sample_events():
        if event["event"] not in events:
            continue
        try:
            template.render_json(event)
        except TemplateError as err:
            return err, str(event["event"])
    return None


def options_digest(options: BaseModel) -> str:
    """A short digest of options, for a sink that names no destination of its own."""
    import hashlib

    text = json.dumps(options.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
