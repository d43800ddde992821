"""components.url_secrets: a URL's password taken out, and URLs shown without their secrets."""

from __future__ import annotations

import pytest

from components import url_secrets


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://u:s3cr%40t@h:5432/db?sslmode=require", "s3cr@t"),  # decoded
        ("postgresql://u:plain@h/db", "plain"),
        ("postgresql://u:p%2Bq%20r@[::1]:5432/db", "p+q r"),
        ("postgresql://u@h/db", None),  # no password
        ("postgresql://u:@h/db", None),  # an empty one
        ("postgresql://u@h/db?password=x", None),  # a query parameter is not the URL's password
        ("http://u:p@[::1/", None),  # not a URL
        ("not a url", None),
    ],
)
def test_password_of(url: str, password: str | None) -> None:
    assert url_secrets.password_of(url) == password


def test_password_spellings_are_the_written_and_the_decoded_password() -> None:
    assert url_secrets.password_spellings("postgresql://u:s3cr%40t@h/db") == {"s3cr%40t", "s3cr@t"}
    assert url_secrets.password_spellings("postgresql://u:plain@h/db") == {"plain"}
    assert url_secrets.password_spellings("postgresql://u@h/db") == set()
    assert url_secrets.password_spellings("http://u:p@[::1/") == set()


def test_spellings_are_the_secret_and_its_percent_encoding() -> None:
    assert url_secrets.spellings("p@ss/word") == {"p@ss/word", "p%40ss%2Fword"}
    assert url_secrets.spellings("plain") == {"plain"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cr%40t@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require"),
        (
            "postgresql://u@h/db?password=x&sslmode=disable",
            "postgresql://u@h/db?password=***&sslmode=disable",
        ),
        ("postgresql://u:p@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("http://u:p@[::1/", "<unparseable URL, not shown>"),
    ],
)
def test_masked_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert url_secrets.masked(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://myapp.bubbleapps.io/api/1.1", "https://myapp.bubbleapps.io/api/1.1"),
        (
            "https://myapp.bubbleapps.io/api/1.1?api_token=x",
            "https://myapp.bubbleapps.io/api/1.1 (credentials/query not shown)",
        ),
        ("https://u:p@host:8443/path#frag", "https://host:8443/path (credentials/query not shown)"),
        ("http://u:p@[::1/", "<unparseable URL>"),
    ],
)
def test_shown_keeps_only_scheme_host_port_and_path(url: str, shown: str) -> None:
    assert url_secrets.shown(url) == shown


def test_no_secret_survives_masking_or_showing() -> None:
    url = "postgresql://someone:Hunter2%21@db.example.com:5432/postgres?password=Other&sslmode=require"
    for text in (url_secrets.masked(url), url_secrets.shown(url)):
        assert "Hunter2" not in text and "Other" not in text
