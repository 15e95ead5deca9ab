"""Settings from the environment (or a ``.env`` file), read once at the edge.

A ``.env`` file provides secrets, never a destination: the host the client secret
is sent to comes only from the policy, an explicit ``--base-url``, or a real
``CXONE_BASE_URL`` environment variable. A ``.env`` file is easy to drop into a
folder unnoticed; a host in it could send the real secret elsewhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import PrivateAttr, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from archiver.errors import ConfigError
from archiver.netutil import url_problem
from archiver.report.redact import MIN_SECRET_CHARS, is_utf8
from archiver.target import EMBEDDED

log = logging.getLogger(__name__)

BASE_URL_VARIABLE = "CXONE_BASE_URL"
FROM_ENVIRONMENT = f"{BASE_URL_VARIABLE} from the environment"
FROM_OPTION = "--base-url"


def _in_environment(name: str) -> bool:
    return any(key.upper() == name for key in os.environ)


class _SecretsOnly(PydanticBaseSettingsSource):
    """The ``.env`` file's values, without a host (``CXONE_BASE_URL``, ignored with a warning)."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the file once, whole

    def __call__(self) -> dict[str, Any]:
        values = dict(self._dotenv())
        if values.pop("base_url", None) is not None and not _in_environment(BASE_URL_VARIABLE):
            log.warning(
                "%s in the .env file is ignored: a .env file provides secrets, never the host "
                "they are sent to (set %s in the environment, or pass --base-url)",
                BASE_URL_VARIABLE,
                BASE_URL_VARIABLE,
            )
        return values


class Settings(BaseSettings):
    """``CXONE_CLIENT_ID``, ``CXONE_CLIENT_SECRET``, for ``api: cxone`` also
    ``CXONE_ACCESS_KEY_ID`` and ``CXONE_ACCESS_KEY_SECRET`` (environment or ``.env``), and
    ``CXONE_BASE_URL`` (environment only)."""

    model_config = SettingsConfigDict(
        env_prefix="CXONE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    client_id: str | None = None
    client_secret: SecretStr | None = None
    # api: cxone also logs in with an access key (the password grant).
    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    base_url: str | None = None
    # Where base_url came from, for the line that says the policy's host was overridden.
    _base_url_origin: str = PrivateAttr(default=FROM_ENVIRONMENT)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _SecretsOnly(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    @classmethod
    def load(cls, base_url: str | None = None) -> Settings:
        """The environment's settings; ``base_url`` (``--base-url``) wins over CXONE_BASE_URL."""
        try:
            settings = cls()
        except UnicodeDecodeError as err:
            raise _not_utf8_env_file(err) from err
        for name in ("client_id", "client_secret", "access_key_id", "access_key_secret"):
            value = getattr(settings, name)
            shown = value.get_secret_value() if isinstance(value, SecretStr) else value
            if shown is not None and not is_utf8(shown):
                # Bytes the environment holds that are not UTF-8 cannot be sent; the value
                # is never shown.
                raise ConfigError(
                    f"CXONE_{name.upper()} is not UTF-8 text (it holds bytes no UTF-8 text "
                    "has); set it again in UTF-8"
                )
        # An id set to nothing (an env file's `CXONE_CLIENT_ID=`) or to spaces names no
        # client: it is missing, and one around spaces is sent without them.
        settings.client_id = (settings.client_id or "").strip() or None
        settings.access_key_id = (settings.access_key_id or "").strip() or None
        if not settings.base_url:
            # CXONE_BASE_URL set to nothing (an env file's `CXONE_BASE_URL=`) overrides
            # nothing: the policy's connection.base_url is used, as everywhere else.
            settings.base_url = None
        if base_url is not None:
            settings.base_url = base_url
            settings._base_url_origin = FROM_OPTION
        if settings.base_url is not None and settings.base_url != EMBEDDED:
            # Refused here, before anything else is read or sent, naming where it came from
            # (the policy's connection.base_url is not at fault).
            problem = url_problem(settings.base_url, settings.base_url_origin,
                                  otherwise=f" or `{EMBEDDED}`")
            if problem:
                raise ConfigError(problem)
        return settings

    @property
    def base_url_origin(self) -> str:
        """``--base-url`` or ``CXONE_BASE_URL from the environment``."""
        return self._base_url_origin


def check_secret(name: str, value: str) -> str:
    """``value``, unless it is too short to be kept out of logs (ConfigError naming ``name``).

    A secret of a few characters would be masked inside ordinary words of every log
    line, and is too weak to be a secret anyway; its value is never printed.
    """
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{name} is shorter than {MIN_SECRET_CHARS} characters: too short to be a secret "
            "or to be masked in logs; set the real value"
        )
    return value


def env_secret(name: str, env_file: Path = Path(".env")) -> str | None:
    """A secret named by the policy (``secret_env``): the environment, then ``.env``."""
    value = os.environ.get(name)
    if value:
        return value
    if env_file.is_file():
        try:
            found = dotenv_values(env_file).get(name)
        except UnicodeDecodeError as err:
            raise _not_utf8_env_file(err) from err
        return found or None
    return None


def _not_utf8_env_file(err: UnicodeDecodeError) -> ConfigError:
    """The .env file holds bytes that are not UTF-8 (none of its values is shown)."""
    return ConfigError(
        f"the .env file in the working folder is not UTF-8 text ({err.reason}); save it as "
        "UTF-8, or remove it"
    )
