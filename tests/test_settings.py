"""Settings from the environment and a .env file that cannot be read as text: one
ConfigError (exit 78) naming the variable or the file, never a Unicode traceback."""

from __future__ import annotations

import pytest

from archiver.errors import ConfigError
from archiver.settings import Settings, env_secret

NOT_UTF8 = b"\xff\xfe-secret-value".decode("utf-8", "surrogateescape")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET", "CXONE_ACCESS_KEY_ID",
                 "CXONE_ACCESS_KEY_SECRET", "CXONE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name", ["CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET",
                                  "CXONE_ACCESS_KEY_ID", "CXONE_ACCESS_KEY_SECRET"])
def test_a_credential_that_is_not_utf8_is_named_not_sent(monkeypatch, name):
    # It was a UnicodeEncodeError traceback when the token call encoded it.
    monkeypatch.setenv(name, NOT_UTF8)
    with pytest.raises(ConfigError, match=f"^{name} is not UTF-8 text") as err:
        Settings.load()
    assert "secret-value" not in str(err.value)


def test_a_dotenv_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / ".env").write_bytes(b"CXONE_CLIENT_ID=demo\nCXONE_CLIENT_SECRET=\xff\xfe-secret-value\n")
    with pytest.raises(ConfigError, match=r"the \.env file in the working folder is not UTF-8") as err:
        Settings.load()
    assert "secret-value" not in str(err.value)
    with pytest.raises(ConfigError, match=r"the \.env file in the working folder is not UTF-8"):
        env_secret("DW_WEBHOOK_SECRET")
