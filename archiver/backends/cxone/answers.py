"""A 2xx answer read into its wire model, or a terminal error naming the bad field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from archiver.errors import TerminalApiError, UnreadableAnswer

M = TypeVar("M", bound=BaseModel)


def read(
    model: type[M], body: object, endpoint: str, campaign_id: str | None, *, acts: bool = False
) -> M:
    """``body`` (None for 204: an empty answer) as ``model``. ``acts``: the answer is
    of a call that changes the tenant, so one not of that shape is ``UnreadableAnswer``
    (the call was accepted; what it did is unknown)."""
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as err:
        # Without the input: it may be long, and a token answer's values are secrets.
        problem = err.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(p) for p in problem["loc"]) or "(answer)"
        raise (UnreadableAnswer if acts else TerminalApiError)(
            f"answer is not valid: field `{where}`: {problem['msg']}",
            campaign_id=campaign_id,
            endpoint=endpoint,
        ) from None
