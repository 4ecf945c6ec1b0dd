"""Where a ledger lives: a folder (LMDB) or a ``postgresql://`` URL, and how to print it.

A location is either a path (the embedded default) or a libpq URI (``postgresql://`` or
``postgres://``; ``PG*`` environment variables and service files apply). One ledger
lives in one schema, ``ledger`` unless the URL's ``schema`` query parameter names
another; that parameter is ours, so it is stripped before libpq sees the URL.

A password must never reach a message, a log line or an event: ``mask`` replaces it
(and any ``password=`` query parameter) with ``***``, and every message about a shared
ledger names it through ``mask``.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = ["DEFAULT_SCHEMA", "PgLocation", "is_url", "mask", "parse_pg"]

DEFAULT_SCHEMA = "ledger"
_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


class PgLocation(NamedTuple):
    conninfo: str  # what libpq gets: the URL without our ``schema`` parameter
    schema: str
    shown: str  # the URL as given, password masked


def is_url(location: str | os.PathLike[str]) -> bool:
    """A ``postgresql://`` or ``postgres://`` URL (any case), as opposed to a path."""
    return isinstance(location, str) and location[:13].lower().startswith(_SCHEMES)


def mask(location: str | os.PathLike[str]) -> str:
    """``location`` safe to print: a URL's password (in the authority or a query
    parameter) as ``***``; a path as it is."""
    if not is_url(location):
        return os.fspath(location)
    from urllib.parse import parse_qsl, urlencode, urlsplit  # only for URLs

    text = str(location)
    try:
        parts = urlsplit(text)
    except ValueError:
        return _mask_crudely(text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            pairs = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            query = urlencode(pairs, safe="*")
    return _unsplit(parts.scheme, netloc, parts.path, query, parts.fragment)


def _unsplit(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    """``urlunsplit`` that keeps ``//`` with an empty host (``postgresql:///db``: the
    local socket), which libpq needs and urllib drops."""
    out = f"{scheme}://{netloc}{path}"
    if query:
        out += f"?{query}"
    if fragment:
        out += f"#{fragment}"
    return out


def _mask_crudely(text: str) -> str:
    """For a URL too broken to parse: hide everything between ``://user:`` and ``@``."""
    text = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
    return re.sub(r"(?i)((?:ssl)?password=)[^&]*", r"\1***", text)


def parse_pg(location: str) -> PgLocation:
    """Split our ``schema`` parameter off a PostgreSQL URL. Raises ``ValueError`` with a
    message that names the URL masked."""
    from urllib.parse import parse_qsl, urlencode, urlsplit  # only for URLs

    shown = mask(location)
    try:
        parts = urlsplit(location)
    except ValueError as exc:
        raise ValueError(f"{shown} is not a valid PostgreSQL URL ({exc})") from None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in pairs if k == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(
            f"{shown}: schema {schema!r} is not a plain identifier (letters, digits and _, "
            "not starting with a digit, at most 63 characters)"
        )
    rest = urlencode([(k, v) for k, v in pairs if k != "schema"])
    conninfo = _unsplit(parts.scheme, parts.netloc, parts.path, rest, parts.fragment)
    return PgLocation(conninfo, schema, shown)
