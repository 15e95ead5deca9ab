"""A token answer's access_token goes out in an Authorization header: text that cannot
(outside RFC 6750's b64token) is a protocol error naming the field, never a traceback,
never sent, never printed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from archiver.cxone import CxoneClient, wire
from archiver.errors import TerminalApiError

from .samples import CAMPAIGN
from .server import FakeCxone, Reply

MakeClient = Callable[..., CxoneClient]


@pytest.mark.parametrize(
    "token",
    ["tök\u20acen-value", "line\nbreak-value", "two words-value", "tab\tvalue", "caf\u00e9-value",
     " leading-value", "trailing-newline\n"],
)
def test_a_token_that_cannot_be_a_bearer_token_is_refused_naming_the_field(
    cxone: FakeCxone, make_client: MakeClient, token: str
) -> None:
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, {"access_token": token, "expires_in": 3600}))
    with pytest.raises(TerminalApiError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=10, offset=0)
    message = str(caught.value)
    assert "token answer is not valid" in message and "access_token" in message
    assert token.strip() not in message
    assert cxone.seen("GET", wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)) == []


@pytest.mark.parametrize("token", ["abc.DEF-123_~+/", "eyJhbGciOi.eyJzdWIi.sig==", "x"])
def test_a_bearer_token_is_used_as_it_came(
    cxone: FakeCxone, make_client: MakeClient, token: str
) -> None:
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, {"access_token": token, "expires_in": 3600}))
    assert make_client().list_attempts(CAMPAIGN, limit=10, offset=0) == []
    sent = cxone.seen("GET", wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN))
    assert sent[0].headers["authorization"] == f"Bearer {token}"  # first try: as it came
