"""The client's transport: URL rules, wire bodies, pooling, the shared limiter, secrets."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest

from archiver.cxone import CxoneClient, RateLimiter, RequestEvent, wire
from archiver.cxone.client import check_base_url
from archiver.errors import (
    ApiError,
    AuthError,
    ConfigError,
    TerminalApiError,
    UnreadableAnswer,
)
from archiver.policy.model import Connection

from .limiter_model import FakeClock
from .samples import CAMPAIGN, FAST_CONNECTION, FAST_RETRY, batch
from .server import CLIENT_ID, CLIENT_SECRET, FakeCxone, Reply, Seen

LIST = wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)
ARCHIVE = wire.ARCHIVE_PATH.format(campaign_id=CAMPAIGN)
MakeClient = Callable[..., CxoneClient]


def build(base_url: str) -> CxoneClient:
    return CxoneClient(
        base_url,
        CLIENT_ID,
        CLIENT_SECRET,
        connection=FAST_CONNECTION,
        retry=FAST_RETRY,
        limiter=RateLimiter(10),
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api-us-02.nicecxone.com",
        "https://api.example.com/prefix/",
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:1234",
        "http://LOCALHOST",
        "http://[::1]:9000",
    ],
)
def test_accepted_base_urls(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")
    build(url).close()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://api.example.com", "plain http is accepted only for loopback"),
        ("http://10.0.0.5", "plain http is accepted only for loopback"),
        ("http://128.0.0.1", "plain http is accepted only for loopback"),
        ("http://localhost.example.com", "plain http is accepted only for loopback"),
        ("ftp://api.example.com", "not an http(s) URL"),
        ("embedded", "not an http(s) URL"),
        ("https://", "not an http(s) URL"),
        ("https://api.example.com?x=1", "query"),
        ("https://api.example.com:99999", "invalid port"),
    ],
)
def test_rejected_base_urls(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(url)
    assert "connection.base_url" in str(caught.value)
    assert why in str(caught.value)


def test_credentials_in_the_base_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        build("https://user:hunter2@api.example.com")
    assert "hunter2" not in str(caught.value)


def test_list_sends_the_wire_query(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script("GET", LIST, Reply(200, [{"id": "a-1"}, {"bogus": True}]))
    assert make_client().list_attempts(CAMPAIGN, limit=50, offset=150) == [
        {"id": "a-1"},
        {"bogus": True},
    ]
    (seen,) = cxone.seen("GET", LIST)
    assert seen.query == {"status": ["completed"], "limit": ["50"], "offset": ["150"]}


def test_archive_sends_the_camelcase_body(cxone: FakeCxone, make_client: MakeClient) -> None:
    cxone.script(
        "POST",
        ARCHIVE,
        Reply(
            200,
            {
                "archivedCount": 1,
                "failedCount": 0,
                "migrationJobId": "job-9",
                "status": "ACCEPTED",
                "timestamp": "2024-05-01T12:00:00Z",
            },
        ),
    )
    request = batch()
    answer = make_client().archive(CAMPAIGN, request, idempotency_key="k")
    assert answer.migration_job_id == "job-9"
    (seen,) = cxone.seen("POST", ARCHIVE)
    assert seen.json() == request
    assert seen.json()["items"][0]["statusMatrix"]["callDurationSeconds"] == 3
    assert seen.headers["content-type"] == "application/json"


def test_campaign_status_is_patched(cxone: FakeCxone, make_client: MakeClient) -> None:
    client = make_client()
    client.set_campaign_status(CAMPAIGN, "PAUSED")
    client.set_campaign_status(CAMPAIGN, "ACTIVE")
    path = wire.CAMPAIGN_PATH.format(campaign_id=CAMPAIGN)
    assert [r.json() for r in cxone.seen("PATCH", path)] == [
        {"status": "PAUSED"},
        {"status": "ACTIVE"},
    ]


def test_campaign_id_is_escaped_in_the_path(cxone: FakeCxone, make_client: MakeClient) -> None:
    make_client().list_attempts("a/b c", limit=1, offset=0)
    assert cxone.seen("GET")[0].path == "/api/v2/campaigns/a%2Fb%20c/attempts"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, {"items": []}), "answer is a JSON object, not an array"),
        (Reply(200, body=b"null"), "answer is a JSON null, not an array"),
        (Reply(200, body=b"true"), "answer is a JSON boolean, not an array"),
        (Reply(200, body=b"<html>oops</html>"), "answer is not valid JSON"),
        (Reply(200, body=b""), "answer is not valid JSON"),
        (Reply(200, body=b"[" * 200_000 + b"]" * 200_000), "answer is not valid JSON"),
    ],
)
def test_unusable_listing_is_terminal(
    cxone: FakeCxone, make_client: MakeClient, reply: Reply, expected: str
) -> None:
    cxone.script("GET", LIST, reply)
    with pytest.raises(TerminalApiError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=1, offset=0)
    assert expected in str(caught.value) and CAMPAIGN in str(caught.value)
    assert len(cxone.seen("GET", LIST)) == 1


def test_malformed_archive_answer_names_the_field(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("POST", ARCHIVE, Reply(200, {"failedCount": 0}))
    with pytest.raises(TerminalApiError, match="archivedCount"):
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")


def test_only_the_archive_calls_own_unreadable_answer_says_it_was_accepted(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # UnreadableAnswer tells the engine that the archive call took effect: never for a
    # token answer read on the way, when no archive call was even sent.
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, body=b"<html>proxy</html>"))
    with pytest.raises(TerminalApiError) as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert not isinstance(caught.value, UnreadableAnswer), caught.value
    assert cxone.seen("POST", ARCHIVE) == []
    cxone.script("POST", ARCHIVE, Reply(200, body=b"<html>proxy</html>"))
    with pytest.raises(UnreadableAnswer, match="not valid JSON"):
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    cxone.script("POST", ARCHIVE, Reply(200, {"failedCount": 0}))
    with pytest.raises(UnreadableAnswer, match="archivedCount"):
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")


def test_sequential_calls_reuse_one_connection(cxone: FakeCxone, make_client: MakeClient) -> None:
    client = make_client()
    for offset in range(5):
        client.list_attempts(CAMPAIGN, limit=1, offset=offset)
    client.archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len({r.client_port for r in cxone.seen()}) == 1


def pool_warnings(
    cxone: FakeCxone, make_client: MakeClient, caplog: pytest.LogCaptureFixture, in_flight: int
) -> list[str]:
    connection = Connection(base_url="embedded", timeout_seconds=5, connect_timeout_seconds=1, max_in_flight=in_flight)
    client = make_client(connection=connection)
    client.list_attempts(CAMPAIGN, limit=1, offset=0)  # the token first, so only listings overlap
    # No listing is answered before all three have arrived: they overlap, however the
    # threads are scheduled.
    together = threading.Barrier(3, timeout=30)

    def answer_together(seen: Seen) -> Reply:
        together.wait()
        return Reply(200, [])

    cxone.respond("GET", LIST, answer_together)
    with (
        caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"),
        ThreadPoolExecutor(max_workers=3) as pool,
    ):
        list(pool.map(lambda o: client.list_attempts(CAMPAIGN, limit=1, offset=o), range(3)))
    return [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]


def test_pool_holds_max_in_flight_connections(
    cxone: FakeCxone, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert pool_warnings(cxone, make_client, caplog, in_flight=3) == []


def test_pool_is_sized_by_the_policy(
    cxone: FakeCxone, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    # With room for one connection, two of three overlapping calls cannot be kept.
    assert pool_warnings(cxone, make_client, caplog, in_flight=1) != []


def test_thread_pool_of_workers_shares_one_client(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("POST", ARCHIVE, *[Reply(429, {"message": "busy"})] * 5)
    client = make_client()
    keys = [f"batch-{i}" for i in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda k: client.archive(CAMPAIGN, batch(), idempotency_key=k), keys)
        )
    assert [a.archived_count for a in answers] == [1] * 20
    posted = cxone.seen("POST", ARCHIVE)
    assert len(posted) == 25
    assert {r.headers["idempotency-key"] for r in posted} == set(keys)
    assert len(cxone.issued) == 1


def test_limiter_paces_every_request(cxone: FakeCxone, make_client: MakeClient) -> None:
    # The limiter's own clock, not arrival times at the server: a busy machine can
    # delay one request and crowd the next, which says nothing about the pacing.
    clock = FakeClock()
    granted: list[float] = []

    class Recording(RateLimiter):
        def acquire(self) -> None:
            super().acquire()
            granted.append(clock.now)

    limiter = Recording(20, adaptive=False, burst=1, clock=clock, sleep=clock.sleep)
    client = make_client(limiter=limiter)
    for offset in range(10):
        client.list_attempts(CAMPAIGN, limit=1, offset=offset)
    assert len(cxone.seen()) == 11  # the token call is paced too
    assert granted == pytest.approx([n / 20 for n in range(11)])


def test_retry_after_holds_back_other_threads(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    throttled = threading.Event()

    def on_request(event: RequestEvent) -> None:
        events.append(event)
        if event.status == 429:
            throttled.set()

    cxone.script("GET", LIST, Reply(429, {"message": "slow down"}, headers={"Retry-After": "1"}))
    client = make_client(on_request=on_request)
    first = threading.Thread(target=lambda: client.list_attempts(CAMPAIGN, limit=1, offset=0))
    first.start()
    assert throttled.wait(5)
    client.set_campaign_status(CAMPAIGN, "PAUSED")  # another worker, unrelated endpoint
    first.join(5)
    refused = cxone.seen("GET", LIST)[0]
    (patched,) = cxone.seen("PATCH")
    assert patched.at - refused.at >= 0.95


def test_no_secret_or_token_in_any_error_or_event(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    messages: list[str] = []
    client = make_client()
    client.list_attempts(CAMPAIGN, limit=1, offset=0)
    token = cxone.issued[0]
    cxone.script("GET", LIST, Reply(400, {"message": f"token {token} lacks scope campaigns:read"}))
    cxone.script(
        "PATCH",
        wire.CAMPAIGN_PATH.format(campaign_id=CAMPAIGN),
        *[Reply(401, {"message": f"Bearer {token} refused"})] * 2,
    )
    with pytest.raises(ApiError) as caught:
        client.list_attempts(CAMPAIGN, limit=1, offset=0)
    messages.append(str(caught.value))
    with pytest.raises(ApiError) as caught:
        client.set_campaign_status(CAMPAIGN, "PAUSED")
    messages.append(str(caught.value))

    echo = f"bad form client_secret={quote_plus(CLIENT_SECRET)} or {CLIENT_SECRET}"
    cxone.script("POST", wire.TOKEN_PATH, Reply(400, {"error_description": echo}))
    with pytest.raises(AuthError) as caught:
        make_client().list_attempts(CAMPAIGN, limit=1, offset=0)
    messages.append(str(caught.value))
    assert "client_secret=***" in messages[-1]

    messages += [e.error for e in events if e.error]
    messages += [repr(e) for e in events] + [repr(client)]
    assert len(messages) > 5
    for text in messages:
        for secret in (CLIENT_SECRET, quote_plus(CLIENT_SECRET), *cxone.issued):
            assert secret not in text


def test_context_manager_closes_the_pooled_connections(cxone: FakeCxone) -> None:
    with build(cxone.url) as client:
        assert client.list_attempts(CAMPAIGN, limit=1, offset=0) == []
        assert cxone.open_connections == 1  # kept alive between calls
    deadline = time.monotonic() + 5
    while cxone.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cxone.open_connections == 0


def test_a_tls_failure_is_terminal_not_retried(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    # The fake server speaks plain HTTP: an https client fails its TLS handshake.
    client = make_client(base_url=cxone.url.replace("http://", "https://"))
    with pytest.raises(TerminalApiError, match="TLS failed"):
        client.list_attempts(CAMPAIGN, limit=10, offset=0)
    assert len(events) == 1, "no retry mends TLS"


def test_an_error_body_nested_past_the_parser_is_reported_unread(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(400, body=b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(TerminalApiError, match="HTTP 400"):
        make_client().list_attempts(CAMPAIGN, limit=1, offset=0)
