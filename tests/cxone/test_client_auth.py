"""OAuth through a real loopback server: caching, expiry, 401 refresh, refused credentials."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from archiver.cxone import CxoneClient, RequestEvent, wire
from archiver.errors import AuthError, TerminalApiError

from .samples import CAMPAIGN, batch
from .server import CLIENT_ID, CLIENT_SECRET, FakeCxone, Reply

LIST = wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)
MakeClient = Callable[..., CxoneClient]


def test_token_request_is_the_client_credentials_form(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    make_client().list_attempts(CAMPAIGN, limit=10, offset=0)
    (token_call,) = cxone.seen("POST", wire.TOKEN_PATH)
    assert token_call.form() == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    (listing,) = cxone.seen("GET", LIST)
    assert listing.headers["authorization"] == f"Bearer {cxone.issued[0]}"


def test_token_is_cached_across_calls(cxone: FakeCxone, make_client: MakeClient) -> None:
    client = make_client()
    for offset in range(0, 50, 10):
        client.list_attempts(CAMPAIGN, limit=10, offset=offset)
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 1
    assert {r.headers["authorization"] for r in cxone.seen("GET", LIST)} == {
        f"Bearer {cxone.issued[0]}"
    }


def test_token_is_refreshed_when_it_expires(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    cxone.token_lifetime = 0.2
    client = make_client()
    client.list_attempts(CAMPAIGN, limit=10, offset=0)
    time.sleep(0.25)
    client.list_attempts(CAMPAIGN, limit=10, offset=10)
    assert len(cxone.issued) == 2
    second = cxone.seen("GET", LIST)[-1]
    assert second.headers["authorization"] == f"Bearer {cxone.issued[1]}"
    # Refreshed ahead of time, not after a refusal.
    assert 401 not in [e.status for e in events]


def test_401_refreshes_once_and_retries_the_call(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    client = make_client()
    client.list_attempts(CAMPAIGN, limit=10, offset=0)
    cxone.revoke_tokens()  # the server forgets the token early
    events.clear()
    cxone.script("GET", LIST, Reply(401, {"error": "invalid_token"}))
    assert client.list_attempts(CAMPAIGN, limit=10, offset=10) == []
    assert len(cxone.issued) == 2
    assert [(e.endpoint, e.status, e.attempt, e.retried) for e in events] == [
        ("list", 401, 1, False),
        ("token", 200, 1, False),
        ("list", 200, 2, True),
    ]


def test_401_after_a_fresh_token_is_an_auth_error(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, *[Reply(401, {"message": "scope campaigns:read missing"})] * 3)
    with pytest.raises(AuthError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=10, offset=0)
    assert len(cxone.seen("GET", LIST)) == 2
    assert len(cxone.issued) == 2
    message = str(caught.value)
    assert CAMPAIGN in message
    assert "scope campaigns:read missing" in message
    assert f"GET {LIST}" in message


def test_invalid_client_is_an_auth_error_without_the_secret(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    with pytest.raises(AuthError) as caught:
        make_client(client_secret="wrong-secret-value").archive(
            CAMPAIGN, batch(), idempotency_key="k1"
        )
    message = str(caught.value)
    host = cxone.url.removeprefix("http://")
    assert f"credentials refused by {host}: Client authentication failed (HTTP 401)" in message
    assert CAMPAIGN in message
    assert "wrong-secret-value" not in message
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 1  # refused credentials are not retried
    assert cxone.seen("POST", wire.ARCHIVE_PATH.format(campaign_id=CAMPAIGN)) == []


def test_token_endpoint_outage_is_retried(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("POST", wire.TOKEN_PATH, Reply(503, {"message": "maintenance"}))
    assert make_client().list_attempts(CAMPAIGN, limit=10, offset=0) == []
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 2


def test_malformed_token_answer_does_not_print_it(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, {"access_token": "leaky-token-value"}))
    with pytest.raises(TerminalApiError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=10, offset=0)
    assert "expires_in" in str(caught.value)
    assert "leaky-token-value" not in str(caught.value)


@pytest.mark.parametrize("lifetime", ["3600", True, None], ids=["string", "bool", "null"])
def test_a_token_lifetime_that_is_not_a_json_number_is_a_protocol_error(
    cxone: FakeCxone, make_client: MakeClient, lifetime: object
) -> None:
    """RFC 6749 5.1: expires_in is a number. "3600" in quotes was read as 3600 (pydantic's
    lax mode), a server's type error taken on trust."""
    cxone.script("POST", wire.TOKEN_PATH,
                 Reply(200, {"access_token": "abc", "expires_in": lifetime}))
    with pytest.raises(TerminalApiError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=10, offset=0)
    assert "expires_in" in str(caught.value)
    assert cxone.seen("GET", wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)) == []


def test_threads_share_one_token_fetch(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.token_delay = 0.2  # every worker arrives while the first fetch is still running
    client = make_client()
    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = list(
            pool.map(lambda o: client.list_attempts(CAMPAIGN, limit=1, offset=o), range(8))
        )
    assert pages == [[]] * 8
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 1


def test_each_caller_of_refused_credentials_gets_its_own_error(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    client = make_client(client_secret="wrong-secret-value")
    errors = []
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            client.list_attempts(CAMPAIGN, limit=10, offset=0)
        errors.append(caught.value)
    assert len({id(e) for e in errors}) == 3, "one shared exception would share its traceback"
    assert len({str(e) for e in errors}) == 1
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 1
