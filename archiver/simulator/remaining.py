"""The still-listed attempt indices of a campaign, with offset paging and removal.

A byte per attempt says whether it is still listed, and a count per block of
``BLOCK`` attempts lets an offset be located without walking every byte:
paging and removal stay cheap for half a million attempts in about half a
megabyte, where a sorted list would pay a memmove per removal.
"""

from __future__ import annotations

from array import array

BLOCK = 512


class Remaining:
    """Indices ``0..size-1`` minus the removed ones, in ascending order."""

    def __init__(self, size: int) -> None:
        self._live = bytearray(b"\x01") * size
        blocks = -(-size // BLOCK)
        self._counts = array("l", [BLOCK]) * blocks
        if blocks:
            self._counts[-1] = size - (blocks - 1) * BLOCK
        self._total = size

    def __len__(self) -> int:
        return self._total

    def __contains__(self, index: int) -> bool:
        return 0 <= index < len(self._live) and self._live[index] == 1

    def remove(self, index: int) -> bool:
        """Drop ``index``; False when it was already gone."""
        if index not in self:
            return False
        self._live[index] = 0
        self._counts[index // BLOCK] -= 1
        self._total -= 1
        return True

    def page(self, offset: int, limit: int) -> list[int]:
        """At most ``limit`` indices starting at the ``offset``-th remaining one."""
        if offset >= self._total or limit <= 0:
            return []
        block = 0
        counts = self._counts
        while offset >= counts[block]:
            offset -= counts[block]
            block += 1
        live = self._live
        # bytearray.find runs in C, so gaps left by removed attempts cost little.
        pos = live.find(1, block * BLOCK)
        for _ in range(offset):
            pos = live.find(1, pos + 1)
        found: list[int] = []
        while pos != -1 and len(found) < limit:
            found.append(pos)
            pos = live.find(1, pos + 1)
        return found
