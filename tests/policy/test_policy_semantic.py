"""Rules that span several keys, and the template checks, on small policy edits."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from archiver.policy import check_file
from archiver.stages.descriptor import StageType
from tests.stage_types import install

from ._texts import VALID, line_of
from .conftest import Writer


def _codes(write: Writer, text: str, template: str | None = None) -> list[tuple[int, str]]:
    path = write(text) if template is None else write(text, template=template)
    return [(d.line, d.code) for d in check_file(path)]


def test_the_valid_policy_is_valid(write: Writer) -> None:
    assert check_file(write()) == []


def test_a_pasted_secret_is_never_echoed(write: Writer) -> None:
    secret = "whsec_Zm9vYmFyYmF6cXV4"
    text = VALID.replace("secret_env: DEMO_WEBHOOK_SECRET", f"secret_env: {secret}")

    found = check_file(write(text))

    assert [(d.line, d.code) for d in found] == [(line_of(text, "secret_env"), "V007")]
    assert secret not in found[0].message


def test_credentials_in_a_url_are_refused_and_not_echoed(write: Writer) -> None:
    text = VALID.replace("    url: embedded", "    url: https://dw:hunter2@dw.example.com/events")

    found = check_file(write(text))

    assert [(d.line, d.code) for d in found] == [(line_of(text, "hunter2"), "V006")]
    assert "hunter2" not in found[0].message


@pytest.mark.parametrize(
    "base_url",
    ["https://api-us-02.nicecxone.com", "http://127.0.0.1:8080", "http://localhost:9000/api",
     "http://[::1]:8080"],
)
def test_https_or_loopback_base_urls_are_accepted(write: Writer, base_url: str) -> None:
    text = VALID.replace("base_url: embedded", f"base_url: {base_url}").replace(
        "    url: embedded", "    url: https://dw.example.com/events"
    )
    assert check_file(write(text)) == []


@pytest.mark.parametrize("base_url", ["http://10.0.0.5", "ftp://example.com", "api.example.com"])
def test_other_base_urls_are_refused(write: Writer, base_url: str) -> None:
    text = VALID.replace("base_url: embedded", f"base_url: {base_url}")
    assert (line_of(text, "base_url"), "V006") in _codes(write, text)


def test_embedded_webhook_needs_the_embedded_simulator(write: Writer) -> None:
    text = VALID.replace("base_url: embedded", "base_url: https://api-us-02.nicecxone.com")
    assert _codes(write, text) == [(line_of(text, "    url: embedded"), "V013")]


def test_outcome_filter_with_nothing_approved(write: Writer) -> None:
    text = VALID.replace("approved: [SURVEY_TAKEN, NO_ANSWER]", "approved: []")
    assert _codes(write, text) == [(line_of(text, "approved"), "V005")]


def test_second_anonymized_filter_and_second_retention(write: Writer) -> None:
    text = VALID.replace("  - type: anonymized\n", "  - type: anonymized\n  - type: anonymized\n")
    text = text.replace("transforms:\n", "transforms:\n  - type: retention\n")
    anonymized = line_of(text, "type: anonymized") + 1
    retention = line_of(text, "type: retention") + 1
    assert _codes(write, text) == [(anonymized, "V004"), (retention, "V009")]


def test_duplicate_retention_rule(write: Writer) -> None:
    text = VALID.replace(
        "        days: 730\n", "        days: 730\n      - outcome: SURVEY_TAKEN\n        days: 30\n"
    )
    assert _codes(write, text) == [(line_of(text, "days: 30") - 1, "V003")]


def test_two_audit_logs_sharing_a_file(write: Writer) -> None:
    text = VALID + "  - type: audit_log\n    path: ./audit/../audit/log.jsonl\n"
    assert _codes(write, text) == [(line_of(text, "./audit"), "V010")]


def test_backoff_that_starts_above_its_ceiling(write: Writer) -> None:
    text = VALID + "retry:\n  initial_backoff_seconds: 90\n  max_backoff_seconds: 60\n"
    assert _codes(write, text) == [(line_of(text, "initial_backoff"), "V011")]


class GeoFenceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regions: list[str] = Field(min_length=1)


GEO_FENCE = StageType(kind="filter", name="geo-fence", options=GeoFenceOptions,
                      factory=lambda options, ctx: None)


def test_registered_plugin_stage_is_accepted(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, GEO_FENCE)
    text = VALID.replace(
        "  - type: anonymized\n",
        "  - type: geo-fence\n    options: {regions: [us-east]}\n  - type: anonymized\n",
    )
    assert check_file(write(text)) == []
    assert _codes(write, text.replace("geo-fence", "geo-fense")) == [
        (line_of(text, "geo-fence"), "V008")
    ]


def test_a_plugins_options_are_checked_by_the_schema_at_their_line(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, GEO_FENCE)
    text = VALID.replace(
        "  - type: anonymized\n",
        "  - type: geo-fence\n    options:\n      regoins: [us-east]\n  - type: anonymized\n",
    )
    found = check_file(write(text))
    # Reported once, at the key, with the key meant (not also as a missing `regions`).
    assert [(d.line, d.code) for d in found] == [(line_of(text, "regoins"), "S001")], found
    assert "did you mean `regions`" in found[0].message
    wrong = text.replace("regoins: [us-east]", "regions: us-east")
    [typed] = check_file(write(wrong))
    assert typed.line == line_of(wrong, "regions") and "regions" in typed.message


def test_misspelt_required_key_is_reported_once(write: Writer) -> None:
    text = VALID.replace("    approved:", "    aproved:")
    assert _codes(write, text) == [(line_of(text, "aproved"), "S001")]


def test_plugin_shaped_stage_with_stray_keys_is_told_about_options(write: Writer) -> None:
    text = VALID.replace("  - type: anonymized\n", "  - type: geo-fence\n    regions: [us]\n")
    (found,) = check_file(write(text))
    assert (found.line, found.code) == (line_of(text, "regions"), "S001")
    assert "under `options`" in found.message


def test_template_that_renders_invalid_json_points_at_the_template(write: Writer) -> None:
    path = write(template='{"event": {{ event | tojson }}, "oops": {{ no_such_value }}}\n')

    (found,) = check_file(path)

    assert found.file == str(path.parent / "templates" / "audit.json.j2")
    assert (found.line, found.code) == (1, "T003")
    assert "no_such_value" in found.message


def test_audit_template_must_not_forge_chain_keys(write: Writer) -> None:
    path = write(template='{"event": {{ event | tojson }}, "hash": "0"}\n')

    (found,) = check_file(path)

    assert found.code == "T003"
    assert "`hash`" in found.message


def test_the_merged_schema_with_a_plugin_is_a_valid_2020_12_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jsonschema import Draft202012Validator

    from archiver.policy._stage_schema import policy_schema

    install(monkeypatch, GEO_FENCE)
    merged = policy_schema()
    Draft202012Validator.check_schema(merged)
    assert merged["$defs"]["filter:geo-fence:options"]["properties"]["regions"]["type"] == "array"
    consts = [b["if"]["properties"]["type"].get("const") for b in merged["$defs"]["filter"]["allOf"]]
    assert "geo-fence" in consts


@pytest.mark.parametrize(
    ("key", "url"),
    [("base_url", "https://api-us-02.nicec\u0445one.com"),  # a Cyrillic х for the x
     ("    url", "https://dw.ex\u0430mple.com/events"),  # a Cyrillic а for the a
     ("    url", "https://dw.example\uff0ecom/events")],  # a fullwidth dot
)
def test_a_host_not_written_in_ascii_is_refused(write: Writer, key: str, url: str) -> None:
    # A host that looks like the tenant's or the warehouse's to a reviewer, but is
    # another name once encoded for DNS (xn--...): the client secret or the signed
    # events would go there.
    text = VALID.replace(f"{key}: embedded", f"{key}: {url}")
    if key == "base_url":
        text = text.replace("    url: embedded", "    url: https://dw.example.com/events")
    found = check_file(write(text))
    assert [(d.line, d.code) for d in found] == [(line_of(text, url), "V006")]
    assert "ASCII" in found[0].message and url not in found[0].message


def test_a_secret_env_name_ending_in_a_newline_is_refused(write: Writer) -> None:
    # No variable has that name: the run would only find the secret missing.
    text = VALID.replace("secret_env: DEMO_WEBHOOK_SECRET", 'secret_env: "DEMO_WEBHOOK_SECRET\\n"')
    assert _codes(write, text) == [(line_of(text, "secret_env"), "V007")]
