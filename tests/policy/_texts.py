"""Policy and template texts the policy tests start from."""

from __future__ import annotations

VALID = """\
version: 1
name: broken-example
connection:
  base_url: embedded
  timeout_seconds: 30
campaigns:
  - id: 3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d
    on_active: pause_and_resume
  - id: 7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81
filters:
  - type: outcome
    approved: [SURVEY_TAKEN, NO_ANSWER]
  - type: anonymized
transforms:
  - type: retention
    rules:
      - outcome: SURVEY_TAKEN
        days: 730
batch:
  max_items: 200
sinks:
  - type: webhook
    url: embedded
    secret_env: DEMO_WEBHOOK_SECRET
  - type: audit_log
    path: audit/log.jsonl
    template: templates/audit.json.j2
"""

AUDIT_TEMPLATE = """\
{
  "event": {{ event | tojson }},
  "run_id": {{ run_id | tojson }},
  "at": {{ timestamp | tojson }}
}
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")
