"""A server is a stranger: bounded answers, whole-call deadlines, and a stop that works."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from archiver.cxone import CxoneClient, RequestEvent, wire
from archiver.cxone.transport import MAX_ANSWER_BYTES
from archiver.errors import CallAbandoned, NetworkError, TerminalApiError, UnreadableAnswer
from archiver.policy.model import Connection, Retry
from tests.support import slow_limiter

from .samples import CAMPAIGN, batch
from .server import FakeCxone, Reply

LIST = wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN)
ARCHIVE = wire.ARCHIVE_PATH.format(campaign_id=CAMPAIGN)
CAMPAIGN_PATH = wire.CAMPAIGN_PATH.format(campaign_id=CAMPAIGN)
MakeClient = Callable[..., CxoneClient]
# A deadline of one second: connect 0.5 s plus the answer 0.5 s.
QUICK = Connection(base_url="embedded", timeout_seconds=0.5, connect_timeout_seconds=0.5)
ONCE = Retry(max_attempts=1, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)


def list_once(client: CxoneClient) -> list[object]:
    return client.list_attempts(CAMPAIGN, limit=10, offset=0)


def gzip_bomb(decoded_mib: int) -> bytes:
    """A gzip body of about ``decoded_mib`` MiB of zeros, in a few kilobytes per MiB."""
    member = gzip.compress(b"\0" * 2**20, compresslevel=9)
    return member * decoded_mib  # concatenated members are one valid gzip stream


def endless_zeros() -> Iterator[bytes]:
    chunk = b"0" * 2**16
    while True:
        yield chunk


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, BaseException]]:
    caught: dict[str, BaseException] = {}

    def run() -> None:
        try:
            fn()
        except BaseException as err:
            caught["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, caught


def test_a_compressed_answer_is_not_inflated_past_the_cap(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    # 64 MiB once inflated, from about 64 KiB on the wire.
    body = gzip_bomb(64)
    cxone.script("GET", LIST, Reply(200, body=body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    message = str(caught.value)
    assert f"HTTP 200 from GET {LIST}" in message and f"campaign {CAMPAIGN}" in message
    assert "larger than 10 MiB" in message
    assert len(cxone.seen("GET", LIST)) == 1, "a protocol error is not retried"
    assert [e.status for e in events if e.endpoint == "list"] == [200]


def test_a_body_that_never_ends_is_read_only_up_to_the_cap(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(200, stream=endless_zeros))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    assert "larger than 10 MiB" in str(caught.value)


def test_an_archive_answer_too_large_to_read_leaves_what_it_archived_unknown(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # Accepted (2xx), then not read: the call may have archived, so the engine must list
    # again (UnreadableAnswer), not record the batch failed.
    cxone.script("POST", ARCHIVE, Reply(200, stream=endless_zeros))
    with pytest.raises(UnreadableAnswer, match="larger than 10 MiB"):
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert len(cxone.seen("POST", ARCHIVE)) == 1
    # A token answer too large, read before the archive call: nothing was sent.
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, stream=endless_zeros))
    with pytest.raises(TerminalApiError, match="larger than 10 MiB") as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k")
    assert not isinstance(caught.value, UnreadableAnswer)
    assert len(cxone.seen("POST", ARCHIVE)) == 1, "no second archive call"


def test_an_answer_just_under_the_cap_is_read_whole(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    filler = "x" * (MAX_ANSWER_BYTES - 100)
    cxone.script("GET", LIST, Reply(200, json=[filler]))
    assert list_once(make_client()) == [filler]


def test_an_answer_trickled_byte_by_byte_is_cut_at_the_deadline(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # Each byte comes well within the read timeout; the whole answer would take minutes.
    trickled = Reply(200, json=[{"id": "x" * 400}], trickle=0.1)
    cxone.script("GET", LIST, trickled, trickled)
    client = make_client(connection=QUICK, retry=Retry(max_attempts=2, initial_backoff_seconds=0.01))
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        list_once(client)
    assert "no complete answer within 1 s" in str(caught.value)
    assert len(cxone.seen("GET", LIST)) == 2, "a deadline is transient: tried again"
    assert time.monotonic() - started < 30  # two deadlines of 1 s, not two trickles of minutes


def test_the_deadline_covers_a_trickled_status_line_and_headers_too(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # The head alone is over 100 bytes: more than 10 s at this pace.
    cxone.script("GET", LIST, Reply(200, json=[], trickle=0.1, headers={"X-Pad": "p" * 100}))
    with pytest.raises(NetworkError) as caught:
        list_once(make_client(connection=QUICK, retry=ONCE))
    assert "no complete answer within 1 s" in str(caught.value)


def test_cancel_cuts_a_call_in_flight(cxone: FakeCxone, make_client: MakeClient) -> None:
    connection = Connection(base_url="embedded", timeout_seconds=60, connect_timeout_seconds=1)
    client = make_client(connection=connection)
    client.list_attempts(CAMPAIGN, limit=1, offset=5)  # the token first: only the listing hangs
    cxone.script("GET", LIST, Reply(200, [], delay=60))
    thread, caught = in_thread(lambda: list_once(client))
    wait_until(lambda: len(cxone.seen("GET", LIST)) == 2, "the listing reached the server")
    client.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the hung call was abandoned"
    err = caught["error"]
    assert isinstance(err, CallAbandoned)
    assert f"campaign {CAMPAIGN}" in str(err) and "the run is stopping" in str(err)
    assert len(cxone.seen("GET", LIST)) == 2, "an abandoned call is not retried"


def test_cancel_ends_a_retry_backoff(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    cxone.script("GET", LIST, Reply(503, {"message": "busy"}, headers={"Retry-After": "60"}))
    retry = Retry(max_attempts=3, initial_backoff_seconds=60, max_backoff_seconds=60)
    client = make_client(retry=retry)
    thread, caught = in_thread(lambda: list_once(client))
    # The client has read the 503 (no call in flight): what is left is the 60 s backoff.
    wait_until(lambda: any(e.status == 503 for e in events), "the 503 reached the client")
    client.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(caught["error"], CallAbandoned)
    assert len(cxone.seen("GET", LIST)) == 1


def slow_limited_client(
    make_client: MakeClient,
) -> tuple[CxoneClient, threading.Event]:
    """A client whose limiter grants one request every 100 s (the token call takes the
    only one), and an event set once a call waits for it."""
    stopping = threading.Event()
    limiter, waiting = slow_limiter(stopping)
    return make_client(limiter=limiter, stopping=stopping), waiting


def test_cancel_ends_the_limiters_wait(cxone: FakeCxone, make_client: MakeClient) -> None:
    client, waiting = slow_limited_client(make_client)
    thread, caught = in_thread(lambda: list_once(client))
    assert waiting.wait(30), "the call never waited for the limiter"
    assert thread.is_alive(), "waiting for the limiter"
    client.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(caught["error"], CallAbandoned)
    assert "the run is stopping" in str(caught["error"])
    assert cxone.seen() == []


def test_once_stopping_no_call_starts_but_resuming_dialing_still_goes_once(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    client = make_client()
    client.cancel()
    with pytest.raises(CallAbandoned):
        list_once(client)
    with pytest.raises(CallAbandoned):
        client.archive(CAMPAIGN, batch(), idempotency_key="k1")
    with pytest.raises(CallAbandoned):
        client.set_campaign_status(CAMPAIGN, "PAUSED")
    assert cxone.seen("GET", LIST) == [] and cxone.seen("PATCH", CAMPAIGN_PATH) == []
    client.set_campaign_status(CAMPAIGN, "ACTIVE")  # a campaign is never left paused by a stop
    assert [r.json() for r in cxone.seen("PATCH", CAMPAIGN_PATH)] == [{"status": "ACTIVE"}]
    client.cancel()  # a second stop gives up on that too
    with pytest.raises(CallAbandoned):
        client.set_campaign_status(CAMPAIGN, "ACTIVE")
    assert len(cxone.seen("PATCH", CAMPAIGN_PATH)) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_resuming_dialing_once_stopping_is_tried_again_within_the_grace(
    cxone: FakeCxone, make_client: MakeClient, status: int
) -> None:
    # A 429 or a 5xx on the way out must not leave the campaign paused until a later run.
    cxone.script("PATCH", CAMPAIGN_PATH, Reply(status, {"message": "busy"}))
    retry = Retry(max_attempts=4, initial_backoff_seconds=0.2, max_backoff_seconds=1)
    client = make_client(retry=retry)
    client.cancel()
    client.set_campaign_status(CAMPAIGN, "ACTIVE")
    assert [r.json() for r in cxone.seen("PATCH", CAMPAIGN_PATH)] == [{"status": "ACTIVE"}] * 2


def test_resuming_dialing_ends_within_the_grace_of_the_stop_however_slow_the_answers(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # Each 503 comes after 4.5 s of silence: under the grace for one try, not for two.
    cxone.script("PATCH", CAMPAIGN_PATH, *[Reply(503, {"message": "busy"}, delay=4.5)] * 6)
    retry = Retry(max_attempts=6, initial_backoff_seconds=0.5, max_backoff_seconds=1)
    client = make_client(retry=retry)
    client.cancel()
    started = time.monotonic()
    with pytest.raises((CallAbandoned, NetworkError)):
        client.set_campaign_status(CAMPAIGN, "ACTIVE")
    assert time.monotonic() - started < 5.5  # 5 s from the stop, and a little for the cut


def test_resuming_dialing_gives_up_when_its_wait_outlasts_the_grace(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("PATCH", CAMPAIGN_PATH, Reply(429, {}, headers={"Retry-After": "30"}))
    retry = Retry(max_attempts=4, initial_backoff_seconds=0.2, max_backoff_seconds=60)
    client = make_client(retry=retry)
    client.cancel()
    started = time.monotonic()
    with pytest.raises(CallAbandoned):
        client.set_campaign_status(CAMPAIGN, "ACTIVE")
    assert time.monotonic() - started < 5  # refused at once, not after waiting
    assert len(cxone.seen("PATCH", CAMPAIGN_PATH)) == 1


def test_a_second_stop_ends_the_retries_of_resuming_dialing(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("PATCH", CAMPAIGN_PATH, *[Reply(503, {})] * 3)
    retry = Retry(max_attempts=4, initial_backoff_seconds=2, max_backoff_seconds=2)
    client = make_client(retry=retry)
    client.cancel()
    thread, caught = in_thread(lambda: client.set_campaign_status(CAMPAIGN, "ACTIVE"))
    deadline = time.monotonic() + 30
    while not cxone.seen("PATCH", CAMPAIGN_PATH) and time.monotonic() < deadline:
        time.sleep(0.01)
    client.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(caught["error"], CallAbandoned)
    assert len(cxone.seen("PATCH", CAMPAIGN_PATH)) == 1


def test_resuming_dialing_that_waits_its_turn_when_the_stop_comes_still_goes(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    client, waiting = slow_limited_client(make_client)  # the PATCH waits its turn
    thread, caught = in_thread(lambda: client.set_campaign_status(CAMPAIGN, "ACTIVE"))
    assert waiting.wait(30), "the call never waited for the limiter"
    client.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert "error" not in caught, caught
    assert [r.json() for r in cxone.seen("PATCH", CAMPAIGN_PATH)] == [{"status": "ACTIVE"}]


@pytest.mark.parametrize("lifetime", ["NaN", "Infinity", "-Infinity", "-5", "0", "1e999"])
def test_a_token_lifetime_that_is_not_a_positive_finite_number_is_a_protocol_error(
    cxone: FakeCxone, make_client: MakeClient, lifetime: str
) -> None:
    body = f'{{"access_token": "tok-1-opaque-value", "expires_in": {lifetime}}}'.encode()
    cxone.script("POST", wire.TOKEN_PATH, Reply(200, body=body))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    message = str(caught.value)
    assert "token answer is not valid: field `expires_in`" in message
    assert "tok-1-opaque-value" not in message
    assert cxone.seen("GET", LIST) == [], "the token was not used"


def test_a_listing_answer_not_in_its_content_encoding_is_unreadable_not_a_lost_connection(
    cxone: FakeCxone, make_client: MakeClient, events: list[RequestEvent]
) -> None:
    cxone.script("GET", LIST, Reply(200, body=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    message = str(caught.value)
    assert "answer cannot be decoded from Content-Encoding gzip" in message
    assert "connection failed" not in message
    assert len(cxone.seen("GET", LIST)) == 1, "a protocol error is not retried"
    assert [e.status for e in events if e.endpoint == "list"] == [200]


def test_an_archive_answer_not_in_its_content_encoding_leaves_what_it_archived_unknown(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    # Accepted: the batch may be archived. Sending it again would not be wrong (the same
    # idempotency key), but the answer says nothing of a lost connection.
    cxone.script("POST", ARCHIVE, Reply(200, body=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(UnreadableAnswer) as caught:
        make_client().archive(CAMPAIGN, batch(), idempotency_key="k-enc")
    assert "cannot be decoded from Content-Encoding gzip" in str(caught.value)
    assert len(cxone.seen("POST", ARCHIVE)) == 1


def test_a_refusal_not_in_its_content_encoding_is_judged_by_its_status(
    cxone: FakeCxone, make_client: MakeClient
) -> None:
    cxone.script("GET", LIST, Reply(403, body=b"not gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(TerminalApiError) as caught:
        list_once(make_client())
    assert "HTTP 403" in str(caught.value)
