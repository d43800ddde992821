"""The secrets a URL may hold, and URLs shown without them: the one place that takes a URL's password out
and that masks a URL.

* `password_of(url)`: the password of a URL such as postgresql://user:password@host/db, decoded.
* `password_spellings(url)`: that password as the URL writes it (percent-encoded) and decoded, to keep out
  of any text.
* `spellings(secret)`: a secret as text may hold it: as it is, and percent-encoded as a URL carries it.
* `masked(url)`: the URL with its password, and a `password=` query parameter, replaced by `***` (a
  database URL: user, host, database and sslmode stay readable).
* `shown(url)`: only scheme, host, port and path (an http URL: its query may hold a token, as Bubble's
  `?api_token=` does), saying when something was left out.

Pure Python: nothing happens at import.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["MASK", "masked", "password_of", "password_spellings", "shown", "spellings"]

#: what stands in for a password in a masked URL
MASK = "***"


def password_of(url: str) -> str | None:
    """The URL's password, percent-decoded; None when it has none (or an empty one) or is no URL."""
    written = _written_password(url)
    return unquote(written) if written else None


def password_spellings(url: str) -> set[str]:
    """The URL's password as the URL writes it and decoded (one, when they are the same); none without one."""
    written = _written_password(url)
    return {written, unquote(written)} if written else set()


def spellings(secret: str) -> set[str]:
    """`secret` as text may hold it: as it is, and percent-encoded as in a URL (`p@ss` -> `p%40ss`)."""
    return {secret, quote(secret, safe="")}


def masked(url: str) -> str:
    """The URL with its password replaced by `***` (also a `password=` query parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL, not shown>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = "&".join(
        f"password={MASK}" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def shown(url: str) -> str:
    """The URL as an error may show it: without user, password, query and fragment, which can hold tokens
    (Bubble documents `?api_token=...`), and saying so when it had any."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    hidden = bool(parts.username or parts.password or parts.query or parts.fragment)
    text = urlunsplit((parts.scheme, host + port, parts.path, "", ""))
    return text + (" (credentials/query not shown)" if hidden else "")


def _written_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
