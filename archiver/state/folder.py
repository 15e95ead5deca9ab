"""Where a policy's state store lives unless ``--state`` says otherwise."""

from __future__ import annotations

from pathlib import Path

STATE_DIR_NAME = ".archiver"


def default_state_dir(policy_path: Path) -> Path:
    """The state folder beside the policy file."""
    return policy_path.resolve().parent / STATE_DIR_NAME
