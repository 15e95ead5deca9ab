from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tenacity import RetryCallState, Retrying

from archiver.cxone.retry import Backoff, parse_retry_after, retrying
from archiver.errors import NetworkError, RateLimited, ServerError, TerminalApiError
from archiver.policy.model import Retry

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("Wed, 01 May 2024 12:00:07 GMT", 7.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),  # already past: go now
        ("Wed, 01 May 2024 12:00:07 -0000", 7.0),
        (None, None),
        ("", None),
        ("-5", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def state_after(err: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(err), err, None))
    return state


def test_backoff_is_full_jitter_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 2

    monkeypatch.setattr("random.uniform", uniform)
    wait = Backoff(Retry(initial_backoff_seconds=1.5, max_backoff_seconds=10.0))
    waits = [wait(state_after(ServerError("x"), n)) for n in range(1, 6)]
    assert bounds == [(0, 1.5), (0, 3.0), (0, 6.0), (0, 10.0), (0, 10.0)]
    assert waits == [0.75, 1.5, 3.0, 5.0, 5.0]


def test_backoff_uses_retry_after_when_respected() -> None:
    err = RateLimited("slow down", retry_after=4.0)
    assert Backoff(Retry(respect_retry_after=True))(state_after(err, 1)) == 4.0


def test_backoff_ignores_retry_after_when_told_to() -> None:
    err = RateLimited("slow down", retry_after=40.0)
    policy = Retry(respect_retry_after=False, initial_backoff_seconds=0.5, max_backoff_seconds=1.0)
    assert 0.0 <= Backoff(policy)(state_after(err, 1)) <= 0.5


def test_backoff_falls_back_to_jitter_for_a_429_without_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 4

    monkeypatch.setattr("random.uniform", uniform)
    policy = Retry(initial_backoff_seconds=0.5, max_backoff_seconds=1.0)
    waits = [Backoff(policy)(state_after(RateLimited("x"), n)) for n in (1, 3)]
    # Full jitter, as for any other transient error: drawn from 0 up to the capped backoff.
    assert bounds == [(0, 0.5), (0, 1.0)]
    assert waits == [0.125, 0.25]


def run(policy: Retry, errors: list[BaseException]) -> tuple[int, list[float]]:
    calls = 0
    slept: list[float] = []

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "done"

    retrying(policy, sleep=slept.append)(flaky)
    return calls, slept


def test_transient_errors_are_retried_until_success() -> None:
    calls, slept = run(Retry(max_attempts=4), [ServerError("a"), NetworkError("b")])
    assert calls == 3
    assert len(slept) == 2


def test_max_attempts_counts_every_try() -> None:
    errors: list[BaseException] = [ServerError(str(i)) for i in range(5)]
    with pytest.raises(ServerError, match=r"^2$"):
        run(Retry(max_attempts=3), errors)
    assert len(errors) == 2  # three tries in all, the last error is the one raised


def test_terminal_errors_are_not_retried() -> None:
    errors: list[BaseException] = [TerminalApiError("bad request")]
    with pytest.raises(TerminalApiError):
        run(Retry(max_attempts=5), errors)
    assert errors == []


def test_retry_after_longer_than_max_backoff_gives_up_at_once() -> None:
    errors: list[BaseException] = [RateLimited("x", retry_after=120.0), ServerError("never")]
    with pytest.raises(RateLimited):
        run(Retry(max_attempts=5, max_backoff_seconds=60.0), errors)
    assert len(errors) == 1


def test_retry_after_is_slept_exactly() -> None:
    calls, slept = run(Retry(max_attempts=3), [RateLimited("x", retry_after=2.0)])
    assert calls == 2
    assert slept == [2.0]


def test_the_policys_full_jitter_is_bounded_by_the_doubling_cap_and_spreads() -> None:
    from archiver.policy.model import Retry

    retry = Retry(initial_backoff_seconds=0.5, max_backoff_seconds=3)
    for n, cap in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (9, 3.0)):
        waits = [retry.full_jitter(n) for _ in range(500)]
        assert all(0 <= w <= cap for w in waits), n
        assert max(waits) > cap * 0.8 and min(waits) < cap * 0.2, n  # spread, not fixed
