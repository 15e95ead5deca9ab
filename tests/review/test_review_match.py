"""Subset matching of expected payload fields."""

from __future__ import annotations

import pytest

from archiver.review.match import MISSING, mismatches, project

ACTUAL = {"a": 1, "b": {"c": True, "d": [1, {"e": "x"}]}, "f": None}


@pytest.mark.parametrize(
    ("expected", "problems"),
    [
        ({}, []),
        ({"a": 1}, []),
        ({"a": 1.0}, []),
        ({"b": {"d": [1, {"e": "x"}]}}, []),
        ({"b": {"d": [1, {}]}}, []),
        ({"f": None}, []),
        ({"a": True}, ["a: expected true, got 1"]),
        ({"b": {"c": 1}}, ["b.c: expected 1, got true"]),
        ({"a": "1"}, ['a: expected "1", got 1']),
        ({"z": 1}, ["z: missing (expected 1)"]),
        ({"b": {"d": [1]}}, ["b.d: expected 1 item(s), got 2"]),
        ({"b": {"d": [2, {"e": "y"}]}}, ["b.d[0]: expected 2, got 1", 'b.d[1].e: expected "y", got "x"']),
        ({"a": {"x": 1}}, ["a: expected a mapping, got 1"]),
    ],
)
def test_mismatches(expected, problems):
    assert mismatches(expected, ACTUAL) == problems


def test_project_keeps_only_what_was_expected():
    assert project({"b": {"c": False}, "z": 1}, ACTUAL) == {"b": {"c": True}, "z": MISSING}
