"""A campaign another run holds is ``busy`` with its holder named; one the holder lets
go between the two questions (take it? who has it?) is taken, not reported busy."""

from __future__ import annotations

from types import SimpleNamespace

from archiver.engine.runner import _busy


class Locks:
    """A store's campaign locks as another run's holds and releases show them."""

    def __init__(self, takes: list[bool], holders: list[str | None]) -> None:
        self.takes, self.holders = takes, holders

    def try_lock_campaign(self, campaign_id: str) -> bool:
        return self.takes.pop(0)

    def campaign_holder(self, campaign_id: str) -> str | None:
        return self.holders.pop(0)


def busy(takes: list[bool], holders: list[str | None]) -> str | None:
    store = Locks(takes, holders)
    reason = _busy(SimpleNamespace(store=store), "c1")  # type: ignore[arg-type]
    assert store.takes == [] and store.holders == [], "asked exactly as often as scripted"
    return reason


def test_a_held_campaign_names_its_holder():
    assert busy([False], ["held by archiver run r1 (pid 7)"]) == "held by archiver run r1 (pid 7)"


def test_a_campaign_let_go_between_the_questions_is_taken():
    assert busy([False, True], [None]) is None


def test_a_campaign_taken_and_let_go_again_and_again_is_left_to_the_others():
    assert busy([False, False, False], [None, None, None]) == "held by another run"


def test_a_free_campaign_is_taken_at_once():
    assert busy([True], []) is None
