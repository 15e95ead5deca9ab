"""Retries through a real loopback server: 429, 5xx, timeouts, and what is never retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import pytest

from archiver.cxone import CxoneClient, RateLimiter, RequestEvent, wire
from archiver.errors import (
    AnswerLost,
    CampaignActive,
    NetworkError,
    RateLimited,
    ServerError,
    TerminalApiError,
)
from archiver.policy.model import Connection, Retry
from tests.support import refused_port

from .samples import CAMPAIGN, batch
from .server import FakeCxone, Reply

LIST = wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)
ARCHIVE = wire.ARCHIVE_PATH.format(campaign_id=CAMPAIGN)
MakeClient = Callable[..., CxoneClient]


def list_once(client: CxoneClient) -> list[object]:
    return client.list_attempts(CAMPAIGN, limit=10, offset=0)


def test_429_retry_after_seconds_is_honoured(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("GET", LIST, Reply(429, {"message": "slow down"}, headers={"Retry-After": "1"}))
    limiter = RateLimiter(1000)
    # The longest backoff is far beyond the second asked for: waiting it instead would show.
    retry = Retry(max_attempts=4, initial_backoff_seconds=0.01, max_backoff_seconds=60)
    started = time.monotonic()
    assert list_once(make_client(limiter=limiter, retry=retry)) == []
    first, second = cxone.seen("GET", LIST)
    assert second.at - first.at >= 0.95
    assert time.monotonic() - started < 30
    assert limiter.current_rate < 1000  # the 429 also lowered the shared rate


def test_429_retry_after_http_date_is_honoured(cxone: FakeCxone, make_client: MakeClient) -> None:
    # HTTP-dates have whole seconds: the retry must not come before the named second,
    # however long the first call took to arrive (a fixed gap would race the clock).
    until = int(time.time()) + 3
    later = formatdate(until, usegmt=True)
    cxone.script("GET", LIST, Reply(429, {"message": "slow down"}, headers={"Retry-After": later}))
    wall_minus_monotonic = time.time() - time.monotonic()
    assert list_once(make_client()) == []
    first, second = cxone.seen("GET", LIST)
    assert first.at + wall_minus_monotonic < until - 0.05  # so the wait below was real
    assert second.at + wall_minus_monotonic >= until - 0.05


def test_429_without_retry_after_backs_off_with_jitter(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    cxone.script("GET", LIST, *[Reply(429, {"message": "slow down"})] * 2)
    # The limiter's clock stands still: the second 429 falls within the cut's hold
    # however slowly the retry's real backoff passes (three calls use no refill).
    limiter = RateLimiter(1000, clock=lambda: 0.0)
    assert list_once(make_client(limiter=limiter)) == []
    assert [e.status for e in events if e.endpoint == "list"] == [429, 429, 200]
    # Too few successes before the 429s to tell the tenant's rate: a fixed cut, once
    # (the second 429 is the same overload).
    assert limiter.current_rate == pytest.approx(700, rel=0.01)


def test_retry_after_ignored_when_the_policy_says_so(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(429, {}, headers={"Retry-After": "30"}))
    retry = Retry(
        max_attempts=3,
        initial_backoff_seconds=0.01,
        max_backoff_seconds=0.05,
        respect_retry_after=False,
    )
    started = time.monotonic()
    assert list_once(make_client(retry=retry)) == []
    assert time.monotonic() - started < 20  # the 30 s asked for were not waited


def test_retry_after_beyond_max_backoff_gives_up_with_a_clear_message(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script(
        "GET", LIST, Reply(429, {"message": "quota exhausted"}, headers={"Retry-After": "3600"})
    )
    retry = Retry(max_attempts=5, initial_backoff_seconds=0.01, max_backoff_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        list_once(make_client(retry=retry))
    assert time.monotonic() - started < 30  # not an hour
    assert caught.value.retry_after == 3600
    assert "retry after 3600 s" in str(caught.value)
    assert "max_backoff_seconds" in str(caught.value)
    assert len(cxone.seen("GET", LIST)) == 1


def test_503_is_retried_then_succeeds(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    cxone.script("GET", LIST, *[Reply(503, {"message": "backend busy"})] * 2)
    assert list_once(make_client()) == []
    list_events = [e for e in events if e.endpoint == "list"]
    assert [(e.status, e.attempt, e.retried) for e in list_events] == [
        (503, 1, False),
        (503, 2, True),
        (200, 3, True),
    ]
    assert list_events[0].error == "HTTP 503: backend busy"
    assert list_events[2].error is None
    assert all(e.method == "GET" and e.duration_seconds >= 0 for e in list_events)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_an_archive_call_answered_5xx_is_not_sent_again(
    cxone: FakeCxone, make_client: MakeClient, status: int
) -> None:
    # The 5xx may come after the archive took effect (a gateway that lost the answer):
    # sent again, an API that keeps no idempotency key would archive the batch twice.
    cxone.script("POST", ARCHIVE, Reply(status, {"message": "upstream timed out"}))
    with pytest.raises(AnswerLost) as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len(cxone.seen("POST", ARCHIVE)) == 1
    assert caught.value.status == status
    message = str(caught.value)
    assert "upstream timed out" in message and "took effect is not known" in message


def test_an_archive_call_sent_again_with_its_key_counts_as_a_retry(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    # The engine sends a batch again once the listing shows its lost call untouched:
    # the same key's second send is a retry in the figures, as a client retry would be.
    cxone.script("POST", ARCHIVE, Reply(503, {"message": "busy"}))
    client = make_client()
    with pytest.raises(AnswerLost):
        client.archive(CAMPAIGN, batch(), idempotency_key="k-1")
    client.archive(CAMPAIGN, batch(), idempotency_key="k-1")
    client.archive(CAMPAIGN, batch(), idempotency_key="k-2")
    archive_events = [e for e in events if e.endpoint == "archive"]
    assert [(e.attempt, e.retried) for e in archive_events] == [(1, False), (2, True), (1, False)]


def test_idempotency_key_is_identical_on_every_try(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # 429s certainly did not take effect: those tries are sent again, with the same key.
    cxone.script("POST", ARCHIVE, *[Reply(429, {})] * 3)
    make_client().archive(CAMPAIGN, batch(), idempotency_key="run-7:camp-42:batch-3")
    keys = [r.headers["idempotency-key"] for r in cxone.seen("POST", ARCHIVE)]
    assert keys == ["run-7:camp-42:batch-3"] * 4
    bodies = {r.body for r in cxone.seen("POST", ARCHIVE)}
    assert len(bodies) == 1


def test_persistent_5xx_stops_after_max_attempts(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("GET", LIST, *[Reply(503, {"message": "backend busy"})] * 10)
    with pytest.raises(ServerError) as caught:
        list_once(make_client())
    assert len(cxone.seen("GET", LIST)) == 4  # FAST_RETRY.max_attempts
    message = str(caught.value)
    assert CAMPAIGN in message and "backend busy" in message and "HTTP 503" in message


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried_and_say_why(
    cxone: FakeCxone, make_client: MakeClient, status: int
) -> None:
    cxone.script(
        "POST", ARCHIVE, Reply(status, {"message": f"items[0].contactId rejected ({status})"})
    )
    with pytest.raises(TerminalApiError) as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len(cxone.seen("POST", ARCHIVE)) == 1
    assert caught.value.status == status
    message = str(caught.value)
    assert f"campaign {CAMPAIGN}" in message
    assert f"POST {ARCHIVE}" in message
    assert f"items[0].contactId rejected ({status})" in message


def test_409_is_campaign_active_and_not_retried(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("POST", ARCHIVE, Reply(409, {"message": "campaign is dialing"}))
    with pytest.raises(CampaignActive) as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len(cxone.seen("POST", ARCHIVE)) == 1
    assert "campaign is dialing" in str(caught.value)


def test_long_error_text_is_truncated(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("GET", LIST, Reply(400, body=b"x" * 5000))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    assert len(str(caught.value)) < 400


def test_plain_text_error_and_reason_phrase_are_used(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(400, body=b"bad offset\n"), Reply(404, body=b""))
    client = make_client()
    with pytest.raises(TerminalApiError, match="bad offset"):
        list_once(client)
    with pytest.raises(TerminalApiError, match="Not Found"):
        list_once(client)


def test_hung_answer_times_out_per_policy_and_is_retried(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    # Answers held back a minute (the server lets them go when it stops).
    cxone.script("GET", LIST, Reply(200, [], delay=60), Reply(200, [], delay=60))
    connection = Connection(base_url="embedded", timeout_seconds=0.3, connect_timeout_seconds=0.5, max_in_flight=2)
    started = time.monotonic()
    assert list_once(make_client(connection=connection)) == []
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 30
    assert [(e.status, e.error is not None) for e in events if e.endpoint == "list"] == [
        (None, True),
        (None, True),
        (200, False),
    ]
    assert "no answer within 0.3 s" in (events[1].error or "")


def test_a_hung_archive_answer_is_lost_not_sent_again(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # The archive may have been made before the answer stalled: not sent again blind.
    cxone.script("POST", ARCHIVE, Reply(200, {}, delay=60))
    connection = Connection(base_url="embedded", timeout_seconds=0.2, connect_timeout_seconds=0.5)
    with pytest.raises(AnswerLost) as caught:
        make_client(connection=connection).archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len(cxone.seen("POST", ARCHIVE)) == 1
    assert "no answer within 0.2 s" in str(caught.value)


def test_hung_server_fails_in_bounded_time(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("GET", LIST, *[Reply(200, [], delay=60)] * 5)
    connection = Connection(base_url="embedded", timeout_seconds=0.2, connect_timeout_seconds=0.5)
    retry = Retry(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        list_once(make_client(connection=connection, retry=retry))
    assert time.monotonic() - started < 30
    assert len(cxone.seen("GET", LIST)) == 3
    assert CAMPAIGN in str(caught.value) and "no answer within 0.2 s" in str(caught.value)


def test_connection_refused_is_a_network_error(
    make_client: MakeClient, events: list[RequestEvent]
) -> None:
    retry = Retry(max_attempts=2, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)
    with refused_port() as port:
        client = make_client(base_url=f"http://127.0.0.1:{port}", retry=retry)
        with pytest.raises(NetworkError) as caught:
            list_once(client)
    # One line a person acts on, not urllib3's nested exception text.
    assert str(caught.value) == f"campaign {CAMPAIGN}: cannot reach 127.0.0.1:{port}: connection refused"
    assert len(events) == 2, "retried like any network error during a run"


def test_every_try_goes_through_the_limiter(cxone: FakeCxone, make_client: MakeClient) -> None:
    class Counting(RateLimiter):
        acquired = 0

        def acquire(self) -> None:
            Counting.acquired += 1
            super().acquire()

    cxone.script("GET", LIST, Reply(503, {}), Reply(429, {}))
    list_once(make_client(limiter=Counting(1000)))
    assert Counting.acquired == 4  # token + three listing tries
    assert len(cxone.seen()) == 4


def test_503_retry_after_is_followed_up_to_the_policys_longest_backoff(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(503, {"message": "maintenance"}, headers={"Retry-After": "1"}))
    retry = Retry(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=5)
    assert list_once(make_client(retry=retry)) == []
    first, second = cxone.seen("GET", LIST)
    assert second.at - first.at >= 0.95  # jitter alone would have waited at most 0.01 s

    cxone.script("GET", LIST, Reply(503, {}, headers={"Retry-After": "3600"}))
    retry = Retry(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.3)
    started = time.monotonic()
    assert list_once(make_client(retry=retry)) == []
    assert time.monotonic() - started < 30  # capped, and not a reason to give up
