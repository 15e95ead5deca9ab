"""Tokens through real sockets: the access key's password grant with the application as
HTTP Basic, refresh before expiry, one fresh login on a 401, refused credentials."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from archiver.errors import AuthError, TerminalApiError
from archiver.simulator.cxone import Behaviour
from archiver.simulator.cxone.tokens import Tokens as SimTokens
from tests.backends.cxone.conftest import api_requests, credentials


def test_password_grant_with_the_application_as_basic(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim)
    assert backend.dialing(sim.campaign_ids[0]) is not None

    [token] = api_requests(sim, "token")
    assert token["method"] == "POST" and token["path"] == "/auth/token"
    assert token["headers"]["Authorization"] == "Basic <redacted>"
    assert token["body"] == {
        "grant_type": "password",
        "username": sim.config.access_key_id,
        "password": "<redacted>",
    }
    assert sim.stats()["grants"] == {"password": 1}
    # Every API call after it carries the bearer token.
    calls = [e for e in sim.requests() if e["path"].startswith("/inContactAPI/")]
    assert calls and all(e["headers"]["Authorization"] == "Bearer <redacted>" for e in calls)


def test_an_access_key_secret_with_equals_signs_is_form_encoded(start_sim, backend_for) -> None:
    sim = start_sim(access_key_secret="a=b&c=d+e%f==")
    backend = backend_for(sim)
    assert backend.dialing(sim.campaign_ids[0]) is not None


def test_a_token_near_expiry_is_refreshed_with_the_refresh_token(start_sim, backend_for) -> None:
    # A three-second token is replaced a tenth of its lifetime before it expires. (Each
    # dialing() makes several calls: they must all fit in one token's first 2.7 s, also
    # on a busy machine, or a third refresh comes in between.)
    sim = start_sim(Behaviour(token_lifetime_seconds=3.0))
    backend = backend_for(sim)
    cid = sim.campaign_ids[0]
    backend.dialing(cid)
    time.sleep(3.1)
    backend.dialing(cid)
    time.sleep(3.1)
    backend.dialing(cid)

    assert sim.stats()["grants"] == {"password": 1, "refresh_token": 2}
    refreshes = [e for e in api_requests(sim, "token") if e["body"]["grant_type"] == "refresh_token"]
    assert [e["body"] for e in refreshes] == [
        {"grant_type": "refresh_token", "refresh_token": "<redacted>"}
    ] * 2
    assert not [e for e in sim.requests() if e["status"] == 401]


def test_a_revoked_token_gets_one_fresh_login(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim)
    cid = sim.campaign_ids[0]
    backend.dialing(cid)
    sim.revoke_tokens()
    assert backend.dialing(cid) is not None

    statuses = [(e["kind"], e["status"]) for e in sim.requests()]
    first_401 = statuses.index(("campaign_skills", 401))
    assert statuses[first_401 + 1] == ("token", 200)
    assert statuses[first_401 + 2] == ("campaign_skills", 200)
    assert sim.stats()["grants"] == {"password": 2}


def test_a_token_refused_even_after_a_fresh_login_is_an_auth_error(start_sim, backend_for) -> None:
    # Tokens that are dead on arrival: the fresh login does not help, and it is not retried.
    sim = start_sim(Behaviour(token_lifetime_seconds=0.0, reported_expires_in=3600.0))
    backend = backend_for(sim)
    with pytest.raises(AuthError, match="refused even after a fresh login"):
        backend.dialing(sim.campaign_ids[0])
    assert sim.stats()["grants"] == {"password": 2}
    assert len(api_requests(sim, "campaign_skills")) == 2


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"client_secret": "not-the-application-secret"}, "invalid_client"),
        ({"access_key_secret": "not-the-access-key-secret"}, "invalid_grant"),
        ({"access_key_id": "someone-else"}, "invalid_grant"),
    ],
)
def test_refused_credentials_are_an_auth_error_without_the_secret(
    start_sim, backend_for, over, error
) -> None:
    sim = start_sim()
    creds = credentials(sim.config, **over)
    backend = backend_for(sim, creds)
    with pytest.raises(AuthError) as caught:
        backend.dialing(sim.campaign_ids[0])
    message = str(caught.value)
    assert "HTTP 400" in message and error in message
    assert creds.access_key_secret not in message and creds.client_secret not in message
    # Refused credentials are not tried again, by this call or the next.
    with pytest.raises(AuthError):
        backend.dialing(sim.campaign_ids[0])
    assert len(api_requests(sim, "token")) == 1


@pytest.mark.parametrize(
    "token",
    [
        # Not Latin-1: http.client's UnicodeEncodeError came out as a traceback.
        pytest.param("leak\u20acme-7Qx2", id="not-latin-1"),
        # "request failed: Invalid leading whitespace ... 'Bearer leak\\nme-7Qx2'": the
        # token, escaped past the scrubbing, in the message.
        pytest.param("leak\nme-7Qx2", id="line-break"),
        # Sent as Latin-1 bytes and refused twice: "access token refused even after a
        # fresh login", exit 78, as if the credentials were wrong.
        pytest.param("leak\u00f6me-7Qx2", id="latin-1"),
        pytest.param("leak me-7Qx2", id="space"),
    ],
)
def test_a_token_that_is_no_bearer_token_is_an_unreadable_token_answer(
    start_sim, backend_for, token
) -> None:
    sim = start_sim()
    answer = {"access_token": token, "token_type": "bearer", "expires_in": 3600}
    sim.set(served_bodies={"token": (200, json.dumps(answer).encode())})
    backend = backend_for(sim, max_attempts=1)
    with pytest.raises(TerminalApiError) as caught:
        backend.dialing(sim.campaign_ids[0])
    message = str(caught.value)
    assert not isinstance(caught.value, AuthError), message
    assert "token answer: field `access_token`" in message and "HTTP 200" in message
    assert "leak" not in message
    assert not api_requests(sim, "campaign_skills"), "a call was made with it"


@pytest.mark.parametrize("lifetime", ["Infinity", "NaN", "1e400", "0", "-60"])
def test_a_token_lifetime_that_is_not_a_positive_finite_number_is_a_protocol_error(
    start_sim, backend_for, lifetime
) -> None:
    # Python's JSON reads Infinity, NaN and 1e400 (as inf): an infinite lifetime was
    # taken, the token then never renewed before it expired.
    sim = start_sim()
    body = f'{{"access_token": "abc.def", "token_type": "bearer", "expires_in": {lifetime}}}'
    sim.set(served_bodies={"token": (200, body.encode())})
    backend = backend_for(sim, max_attempts=1)
    with pytest.raises(TerminalApiError) as caught:
        backend.dialing(sim.campaign_ids[0])
    assert not isinstance(caught.value, AuthError), str(caught.value)
    assert "token answer: field `expires_in`" in str(caught.value)
    assert not api_requests(sim, "campaign_skills")


def test_a_lifetime_over_before_its_answer_arrives_is_not_renewed_before_every_call(
    start_sim, backend_for, monkeypatch, caplog
) -> None:
    # expires_in 0.02 s from a token endpoint that takes 0.1 s to answer: every call
    # was preceded by a refresh_token grant. The token is used until the API refuses it.
    granting = SimTokens.grant

    def slow(self: SimTokens, *args: Any) -> Any:
        time.sleep(0.1)
        return granting(self, *args)

    monkeypatch.setattr(SimTokens, "grant", slow)
    sim = start_sim(Behaviour(reported_expires_in=0.02))
    backend = backend_for(sim)
    cid = sim.campaign_ids[0]
    for _ in range(3):
        backend.dialing(cid)
    assert len(api_requests(sim, "campaign_skills")) >= 3
    assert sim.stats()["grants"] == {"password": 1}
    # Refused at last: one fresh login, the call sent again, and no second warning.
    sim.revoke_tokens()
    backend.dialing(cid)
    assert sim.stats()["grants"] == {"password": 2}
    assert not [e for e in sim.requests() if e["status"] not in (200, 401)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "not replaced before every call" in r.getMessage()]
    assert len(warnings) == 1
    assert "expires_in 0.02 s" in warnings[0]
