"""Where a policy's state store lives unless ``--state`` says otherwise."""

from __future__ import annotations

from pathlib import Path

STATE_DIR_NAME = ".archiver"
# The end of the message refusing a state folder or file that is not archiver's own.
REFUSED = "remove it, or pass --state DIR for a state folder of archiver's own"


def default_state_dir(policy_path: Path) -> Path:
    """The state folder beside the policy file."""
    return policy_path.resolve().parent / STATE_DIR_NAME
