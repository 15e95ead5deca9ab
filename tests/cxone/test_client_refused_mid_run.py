"""Credentials refused in the middle of a run, through a real loopback server: every
campaign's call fails with an error that names that campaign."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from archiver.cxone import CxoneClient, wire
from archiver.errors import AuthError

from .server import FakeCxone, Reply

MakeClient = Callable[..., CxoneClient]
REFUSED = Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})


def test_credentials_refused_mid_run_name_each_callers_own_campaign(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    client = make_client()
    for campaign in ("camp-a", "camp-b"):
        client.list_attempts(campaign, limit=10, offset=0)
    # The secret is rotated while the run goes on: the token expires, a new one is refused.
    cxone.revoke_tokens()
    cxone.script("POST", wire.TOKEN_PATH, REFUSED)

    errors = {}
    for campaign in ("camp-a", "camp-b", "camp-c"):
        with pytest.raises(AuthError) as caught:
            client.list_attempts(campaign, limit=10, offset=0)
        errors[campaign] = str(caught.value)

    host = cxone.url.removeprefix("http://")
    for campaign, message in errors.items():
        # A campaign's failure reason (and its attempts') must not blame another campaign.
        assert message == (
            f"campaign {campaign}: credentials refused by {host}: "
            "Client authentication failed (HTTP 401)"
        )
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 2  # refused once, not asked again
    refusal = client.credentials_refused()
    assert refusal is not None and "credentials refused by" in str(refusal)
