"""``--state``, as every command that reads or writes a state store takes it: a state
folder (SQLite) or a ``postgresql://`` URL (a store runs on many machines share).

A password in the URL is masked in every log line from the moment it is read, and
never printed: the URL is shown without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from archiver.commands._params import ParamType
from archiver.commands._paths import EMPTY, PathParam, unusable
from archiver.errors import ConfigError
from archiver.report.redact import register_secret
from archiver.state import location
from archiver.state.folder import STATE_DIR_NAME
from archiver.state.location import PostgresUrl, StateLocation

HELP = (
    "State store: a folder (SQLite, created owner-only) or a postgresql:// URL (one store "
    "runs on many machines share; ARCHIVER_STATE_URL when not given)."
)


class StateParam(ParamType[StateLocation]):
    name = "DIR|URL"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> StateLocation:
        if isinstance(value, Path | PostgresUrl):
            return value
        if value == "":
            self.fail(EMPTY, param, ctx)
        try:
            found = location.parse(str(value))
        except ConfigError as err:
            self.fail(str(err), param, ctx)
        problem = unusable(found) if isinstance(found, Path) else None
        if problem:
            self.fail(problem, param, ctx)
        return _masked(found)


STATE = StateParam()


def default_state(policy_path: Path) -> StateLocation:
    """Without ``--state``: ``ARCHIVER_STATE_URL``, else the folder beside the policy."""
    return _masked(location.default_for(policy_path))


def state_from_env() -> StateLocation | None:
    url = location.from_env()
    return _masked(url) if url is not None else None


def subcommand_state(
    ctx: click.Context, state_dir: StateLocation | None, policy_path: Path | None
) -> StateLocation:
    """The store a ``runs`` subcommand reads: its own ``--state`` or ``--policy``, else
    the group's (``archiver runs --state X outbox``), else the default."""
    if state_dir is not None:
        return state_dir
    if policy_path is not None:
        return default_state(policy_path)
    parent = ctx.obj if isinstance(ctx.obj, Path | PostgresUrl) else None
    return parent or state_from_env() or Path(STATE_DIR_NAME)


def _masked(found: StateLocation) -> StateLocation:
    for secret in location.secrets_of(found):
        register_secret(secret)
    return found


F = TypeVar("F", bound=Callable[..., Any])


def state_options(func: F) -> F:
    """``--state DIR`` and ``--policy FILE``, accepted before and after ``show``."""
    func = click.option(
        "--policy", "policy_path",
        type=PathParam(reads=True, exists=True, dir_okay=False, path_type=Path),
        help="Use the state folder of this policy (.archiver/ beside it).",
    )(func)
    return click.option(
        "--state", "state_dir", type=STATE,
        help=f"{HELP} Default: ARCHIVER_STATE_URL, else beside --policy, else ./{STATE_DIR_NAME}.",
    )(func)
