"""Outcome codes a policy names must be codes attempts can carry.

An outcome filter approving `NO_ANSWR`, or a retention rule for `no_answer`, would
silently stop (or never start) archiving a whole outcome: each unknown code is an
error, with the nearest known code suggested.

A policy may list thousands of codes: each message names at most MAX_LISTED known
codes, and only the first MAX_SUGGESTED unknown codes are compared with every known
one for a suggestion (a typo is one or two codes; thousands of unknown ones would
otherwise cost minutes and gigabytes of output).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from archiver.backends.catalog import known_outcomes as backend_outcomes
from archiver.errors import Diagnostic
from archiver.policy import _codes as codes
from archiver.policy._document import Document, JsonPath
from archiver.policy.model import Policy
from archiver.stages import registry

MAX_LISTED = 20
MAX_SUGGESTED = 20


def known_outcomes(policy: Policy) -> tuple[str, ...]:
    """The outcome codes a policy may name: the backend's, then its own extra ones."""
    return (*(backend_outcomes(policy.connection.api) or ()), *policy.source.extra_outcomes)


def check_outcomes(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """Outcome codes no attempt will ever carry: a typo would silently stop (or never
    start) archiving a whole outcome.

    Only where the backend's codes are known before listing: on cxone an outcome is
    the name of a disposition the tenant configured, so there is nothing to check
    against (``archiver plan`` shows the outcomes a tenant's listing carries)."""
    if backend_outcomes(policy.connection.api) is None:
        return
    known = known_outcomes(policy)
    known_set = frozenset(known)
    # Compared without case so that `no_answer` suggests `NO_ANSWER`; a match still has
    # to be written exactly, since the API's codes are compared exactly.
    by_upper = {k.upper(): k for k in known}
    listed = ", ".join(known[:MAX_LISTED])
    if len(known) > MAX_LISTED:
        listed += f", ... ({len(known) - MAX_LISTED} more)"
    named: list[tuple[str, JsonPath]] = []
    for one in registry.placed(policy):
        if one.stage is not None:
            named += [(code, (*one.options_at, *at))
                      for code, at in one.stage.outcomes(one.item.options)]
    suggested = 0
    for code, path in named:
        if code in known_set:
            continue
        hint = ""
        if suggested < MAX_SUGGESTED:
            suggested += 1
            close = difflib.get_close_matches(code.upper(), list(by_upper), n=1, cutoff=0.6)
            hint = f"did you mean `{by_upper[close[0]]}`? " if close else ""
        yield doc.at_value(path, codes.UNKNOWN_OUTCOME,
                           f"unknown outcome code `{code}`; {hint}known: {listed}; a code of "
                           "the tenant's own must be listed under `source.extra_outcomes`")
