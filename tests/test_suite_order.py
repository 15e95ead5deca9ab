"""The suite's own scheduling list names files that exist."""

from __future__ import annotations

from tests.conftest import SLOW_FILES_FIRST
from tests.support import REPO


def test_every_file_the_suite_starts_first_exists():
    missing = [path for path in SLOW_FILES_FIRST if not (REPO / path).is_file()]
    assert missing == []
    assert len(set(SLOW_FILES_FIRST)) == len(SLOW_FILES_FIRST)
