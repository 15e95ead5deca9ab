"""One endpoint rule: https, or plain http on loopback; refusals never quote the URL."""

from __future__ import annotations

import pytest

from archiver.errors import ConfigError
from archiver.netutil import require_secure_url, url_problem


@pytest.mark.parametrize(
    "url", ["https://dw.example.com/hook", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://LOCALHOST/x"]
)
def test_accepted(url):
    assert url_problem(url, "webhook url") is None
    assert require_secure_url(url, what="webhook url") == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://dw.example.com/hook", "must use https://"),
        ("ftp://dw.example.com", "must be an https:// URL"),
        ("https://dw.example.com:99999", "not a valid URL"),
        ("https://user:s3cr3t-pw@dw.example.com/hook", "must not carry credentials"),
    ],
)
def test_refused_without_quoting_the_url(url, why):
    with pytest.raises(ConfigError) as caught:
        require_secure_url(url, what="webhook url")
    assert why in str(caught.value) and str(caught.value).startswith("webhook url ")
    assert "s3cr3t-pw" not in str(caught.value) and "dw.example.com" not in str(caught.value)


@pytest.mark.parametrize("url", ["https://api-us-02.nicec\u0445one.com", "https://dw.\u00e9xample.com/x",
                                 "https://dw.example\u3002com/x"])
def test_a_host_not_written_in_ascii_is_refused(url):
    problem = url_problem(url, "webhook url")
    assert problem is not None and "ASCII" in problem and url not in problem
    assert url_problem("https://xn--dw-xample-b5a.com/x", "webhook url") is None
