"""Settings from the environment (or a ``.env`` file), read once at the edge."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``CXONE_CLIENT_ID``, ``CXONE_CLIENT_SECRET`` and ``CXONE_BASE_URL``."""

    model_config = SettingsConfigDict(
        env_prefix="CXONE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    client_id: str | None = None
    client_secret: SecretStr | None = None
    base_url: str | None = None


def env_secret(name: str, env_file: Path = Path(".env")) -> str | None:
    """A secret named by the policy (``secret_env``): the environment, then ``.env``."""
    value = os.environ.get(name)
    if value:
        return value
    if env_file.is_file():
        found = dotenv_values(env_file).get(name)
        return found or None
    return None
