from __future__ import annotations

import threading
import time

import pytest

from archiver.cxone.auth import Token, TokenCache, refresh_margin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.count = 0

    def __call__(self) -> Token:
        self.count += 1
        return Token(f"tok-{self.count}", self.lifetime)


@pytest.mark.parametrize(
    ("lifetime", "margin"), [(3600, 60), (600, 60), (300, 30), (10, 1), (0, 0)]
)
def test_refresh_margin_is_the_smaller_of_a_minute_and_a_tenth(
    lifetime: float, margin: float
) -> None:
    assert refresh_margin(lifetime) == margin


def test_token_is_cached_until_shortly_before_expiry() -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    issue = Issuer(lifetime=300)  # margin 30 s
    assert cache.get(issue) == "tok-1"
    clock.now += 269
    assert cache.get(issue) == "tok-1"
    clock.now += 1  # 270 s: within the margin
    assert cache.get(issue) == "tok-2"
    assert issue.count == 2


def test_invalidate_drops_only_the_stale_token() -> None:
    cache = TokenCache(clock=Clock())
    issue = Issuer(lifetime=3600)
    stale = cache.get(issue)
    cache.invalidate(stale)
    fresh = cache.get(issue)
    assert fresh == "tok-2"
    cache.invalidate(stale)  # another thread's late 401 for the old token
    assert cache.get(issue) == "tok-2"
    assert issue.count == 2


def test_failed_fetch_leaves_no_token_and_next_caller_fetches() -> None:
    cache = TokenCache(clock=Clock())
    calls = 0

    def failing() -> Token:
        nonlocal calls
        calls += 1
        raise RuntimeError("token endpoint down")

    with pytest.raises(RuntimeError):
        cache.get(failing)
    assert cache.get(Issuer(3600)) == "tok-1"
    assert calls == 1


def test_one_refresh_at_a_time_across_threads() -> None:
    cache = TokenCache()
    issue = Issuer(lifetime=3600)

    def slow() -> Token:
        time.sleep(0.1)
        return issue()

    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["tok-1"] * 8
    assert issue.count == 1


def test_token_repr_hides_the_value() -> None:
    assert "tok-secret" not in repr(Token("tok-secret", 60))


def test_issued_tokens_are_remembered_for_scrubbing() -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    issue = Issuer(lifetime=60)
    for _ in range(6):
        cache.get(issue)
        clock.now += 60
    assert cache.issued() == ("tok-3", "tok-4", "tok-5", "tok-6")


def test_a_lifetime_over_before_its_answer_arrives_is_kept_until_refused(caplog) -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    issue = Issuer(lifetime=1)

    def slow() -> Token:
        clock.now += 2  # the answer took longer than the lifetime it states
        return issue()

    assert cache.get(slow) == "tok-1"
    clock.now += 1000
    assert cache.get(slow) == "tok-1"
    cache.invalidate("tok-1")  # the API refused it at last
    assert cache.get(slow) == "tok-2"
    assert issue.count == 2
    assert len([r for r in caplog.records if "expires_in 1 s" in r.getMessage()]) == 1
