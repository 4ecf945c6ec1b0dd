"""Secret redaction before an event is hashed and stored.

The log is immutable, so a secret that reaches it stays forever (docs/reliability.md, pitfall 13):
values under secret-looking keys, and values shaped like well-known credentials, are
replaced before the id, the hash and the stored bytes are computed. Keys are split into
words on ``_``, ``-``, ``.``, spaces and camelCase, and matched as whole words, so
``auth_token`` is redacted and ``max_tokens`` or ``key_dim`` are kept. The same key rule
applies inside strings (``--api-key=...`` in a command line, ``password: ...``) and to
the value after a secret-named flag in a list (``["--password", "..."]``) or in a
command line kept as one string (``"train.py --password ..."``: that value only is
replaced, so the rest of the command line stays readable).

An artifact's ``uri`` keeps its location: only the credentials in it are replaced (a
password in ``scheme://user:password@host``, secret-named query parameters such as
``token=`` or ``X-Amz-Credential=``, and credential shapes).

Every value of every appended config is scanned, so the scan must stay linear and cheap:
each credential shape is tried only when its literal prefix occurs (``str.find`` speed),
and every quantifier is bounded (an unbounded ``[a-z]*://`` alone made a 2 KB value cost
1.7 ms, and grows with the square of the length).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

__all__ = [
    "REDACTED",
    "is_secret_key",
    "looks_like_secret",
    "needs_redaction",
    "redact",
    "redact_fields",
    "redact_flag_values",
    "redact_uri",
]

REDACTED = "[redacted]"

_SECRET_WORDS = frozenset(
    {
        "apikey",
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "token",
        "authorization",
        "credential",
        "credentials",
        "privatekey",
    }
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})

# Every pattern is compiled on its first use (``_re``): compiling them all took ~3 ms of
# every process that opened a ledger, and most are needed only when their literal occurs.
_re = lru_cache(maxsize=None)(re.compile)

_SPLIT = r"[_\-.\s/:]+"
_CAMEL = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"

# (literal prefixes, full shape): gitleaks-derived credential shapes. The shape is only
# searched when one of its literals occurs in the value.
_SHAPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{36,255}"),
    (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,255}"),
    (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,255}"),  # GitLab
    (("xox",), r"\bxox[abposr]-[A-Za-z0-9\-]{10,255}"),  # Slack
    (("hooks.slack.com/",), r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}"),
    (
        ("sk-",),
        r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_\-]{20,255}",
    ),  # OpenAI/Anthropic
    (
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,255}",
    ),
    (("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    (("hf_",), r"\bhf_[A-Za-z]{30,255}"),  # Hugging Face
    (("npm_",), r"\bnpm_[A-Za-z0-9]{36}"),
    (("pypi-AgEIcHlwaS5vcmc",), r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    (("SG.",), r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}"),  # SendGrid
    (("dapi",), r"\bdapi[a-f0-9]{32}\b"),  # Databricks
    (("dop_v1_", "doo_v1_"), r"\bdo[po]_v1_[a-f0-9]{64}\b"),  # DigitalOcean
    (("shpat_", "shpss_", "shpca_", "shppa_"), r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b"),
    (("AccountKey=",), r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}"),  # Azure storage
    (("eyJ",), r"\beyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,8192}\.[A-Za-z0-9_\-]{8,}"),
    (("-----BEGIN",), r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----"),
)
_DIGIT = r"[0-9]"
_BY_LITERAL = tuple((lit, shape) for lits, shape in _SHAPES for lit in lits)
# An HTTP Authorization value on its own: scheme, one credential token (with a digit or
# long enough not to be an ordinary word).
_AUTH_VALUE = (
    r"(?:Bearer|Basic|Token|Digest|Bot) +(?=[^ ]*[0-9+/=_\-]|[^ ]{20})[A-Za-z0-9._~+/\-]{8,}=*"
)
# ``name=value`` / ``name: value`` inside a string; the name decides (is_secret_key).
_ASSIGNMENT = r"(?:^|(?<=[\s,;&?\"'{(]))-{0,2}([A-Za-z][A-Za-z0-9_.\-]{0,63})[\"']?\s{0,3}[=:]\s{0,3}[\"']?[^\s,;&\"']"
# A URL with a password: ``scheme://user:password@`` (the scheme is checked backwards
# from each candidate, so the search is anchored on the literal ``://``).
_URL_CREDENTIALS = r"://[^/\s:@]{0,256}:[^/\s@]{1,256}@"
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_KEY_HINTS = ("key", "secret", "passw", "token", "auth", "credential", "passphrase")
_FLAG = r"-{1,2}([A-Za-z][A-Za-z0-9_.\-]{0,63})"
# A flag and its value inside a command line: ``--password VALUE`` (a quoted value too).
_FLAG_VALUE = (
    r"(?:^|(?<=\s))(-{1,2}([A-Za-z][A-Za-z0-9_.\-]{0,63}))(\s{1,8})"
    r"(\"[^\"]{0,4096}\"|'[^']{0,4096}'|(?!-)[^\s\"']{1,4096})"
)
# Credentials inside a URI: the password of ``user:password@``, a query parameter.
_URI_PASSWORD = r"(://[^/\s:@]{0,256}:)[^/\s@]{1,256}@"
_URI_PARAM = r"([?&;])([^=&;#\s]{1,128})=([^&;#\s]{1,8192})"
_URI_SECRET_PARAMS = frozenset({"sig", "signature", "x-amz-signature", "x-goog-signature"})


def _words(key: str) -> list[str]:
    return [w.lower() for w in _re(_SPLIT).split(_re(_CAMEL).sub("_", key)) if w]


_KEY_HINT = "key|secret|pass|token|auth|credential"


@lru_cache(maxsize=16384)
def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are secrets (whole-word match on its parts)."""
    if not _re(_KEY_HINT).search(key.lower()):
        return False  # the common case, without splitting
    words = _words(key)
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def looks_like_secret(value: str) -> bool:
    """Whether a string holds a credential: a known token shape, a URL with a password,
    an Authorization value, or ``name=value`` with a secret-looking name."""
    if len(value) < 7:  # shorter than any shape, and than "token=x"
        return False
    for literal, shape in _BY_LITERAL:
        if literal in value:
            if literal != "sk-":
                if _re(shape).search(value):
                    return True
            elif any(_re(_DIGIT).search(m.group()) for m in _re(shape).finditer(value)):
                return True  # real keys have digits; ``sk-learn-compatible...`` has none
    if "://" in value and _url_with_password(value):
        return True
    if value.startswith(("Bearer ", "Basic ", "Token ", "Digest ", "Bot ")):
        if _re(_AUTH_VALUE).fullmatch(value.strip()):
            return True
    if "=" in value or ":" in value:
        low = value.lower()
        if any(h in low for h in _KEY_HINTS):
            return any(is_secret_key(m.group(1)) for m in _re(_ASSIGNMENT).finditer(value))
    return False


def _url_with_password(value: str) -> bool:
    for m in _re(_URL_CREDENTIALS).finditer(value):
        at = start = m.start()
        while start > 0 and at - start < 32 and value[start - 1] in _SCHEME_CHARS:
            start -= 1
        if start < at and value[start].isalpha():
            return True
    return False


def redact_flag_values(value: str) -> str:
    """``value`` with the value of every secret-named flag replaced in place
    (``train.py --password [redacted] --lr 0.1``); the same string when there is none."""
    if "-" not in value or not _re(_KEY_HINT).search(value.lower()):
        return value  # the common case: no flag, or no secret-looking word at all

    def sub(m: re.Match[str]) -> str:
        if not is_secret_key(m.group(2)) or m.group(4) == REDACTED:
            return m.group(0)
        return m.group(1) + m.group(3) + REDACTED

    new = _re(_FLAG_VALUE).sub(sub, value)
    return value if new == value else new


def redact_uri(uri: str) -> str:
    """``uri`` with its credentials replaced and its location kept; the same string when
    it holds none."""
    new = _re(_URI_PASSWORD).sub(lambda m: m.group(1) + REDACTED + "@", uri)
    if "=" in new:

        def param(m: re.Match[str]) -> str:
            name = m.group(2)
            if m.group(3) == REDACTED or not (
                is_secret_key(name) or name.lower() in _URI_SECRET_PARAMS
            ):
                return m.group(0)
            return f"{m.group(1)}{name}={REDACTED}"

        new = _re(_URI_PARAM).sub(param, new)
    for literal, shape in _BY_LITERAL:
        if literal in new:
            new = _re(shape).sub(REDACTED, new)
    return uri if new == uri else new


# Top-level string fields redacted in place rather than replaced whole.
_IN_PLACE = {"uri": redact_uri}


def _flag_name(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("-"):
        m = _re(_FLAG).fullmatch(value)
        if m:
            return m.group(1)
    return None


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _scan(obj: Any, path: str, found: list[str]) -> Any:
    """``obj`` with secrets replaced; the very same object when nothing was.

    Paths are only built for what is redacted or recursed into: a config with many
    plain values costs one type check per value.
    """
    if isinstance(obj, str):
        return _scan_str(obj, path, found)
    if isinstance(obj, dict):
        return _scan_dict(obj, path, found)
    if isinstance(obj, list):
        return _scan_list(obj, path, found)
    return obj


def _scan_str(obj: str, path: str, found: list[str]) -> str:
    if obj == REDACTED:
        return obj
    if looks_like_secret(obj):
        found.append(path)
        return REDACTED
    new = redact_flag_values(obj)  # a command line: its secret flag values only
    if new is not obj:
        found.append(path)
    return new


def _scan_dict(obj: dict[Any, Any], path: str, found: list[str]) -> dict[Any, Any]:
    out: dict[Any, Any] | None = None
    for key, value in obj.items():
        if value is None:
            continue
        if isinstance(key, str) and is_secret_key(key):
            if isinstance(value, str) and value == REDACTED:
                continue
            new: Any = REDACTED
            found.append(_join(path, key))
        elif isinstance(value, (str, dict, list)):
            new = _scan(value, _join(path, key), found)
        else:
            continue
        if new is not value:
            if out is None:
                out = dict(obj)
            out[key] = new
    return obj if out is None else out


def _scan_list(obj: list[Any], path: str, found: list[str]) -> list[Any]:
    items: list[Any] | None = None
    secret_next = False
    for i, value in enumerate(obj):
        name = _flag_name(value)
        if secret_next and value is not None and value != REDACTED and name is None:
            new = REDACTED
            found.append(f"{path}[{i}]")
        elif isinstance(value, (str, dict, list)):
            new = _scan(value, f"{path}[{i}]", found)
        else:
            new = value
        secret_next = name is not None and is_secret_key(name)
        if new is not value:
            if items is None:
                items = list(obj)
            items[i] = new
    return obj if items is None else items


def redact(obj: Any, *, path: str = "", found: list[str] | None = None) -> tuple[Any, list[str]]:
    """A copy of ``obj`` with secrets replaced, and the dotted paths that were redacted.

    The input is never modified, so a caller's config dict stays as it was.
    """
    found = [] if found is None else found
    return _scan(obj, path, found), found


def needs_redaction(obj: Any) -> bool:
    """Whether ``redact`` would change anything."""
    return bool(redact(obj)[1])


def redact_fields(fields: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Redact several named top-level fields at once (``config``, ``params``...); a
    ``uri`` keeps its location (``redact_uri``)."""
    out: dict[str, Any] = {}
    found: list[str] = []
    for name, value in fields:
        if value is None:
            continue
        if name in _IN_PLACE and isinstance(value, str):
            new = _IN_PLACE[name](value)
            if new is not value:
                found.append(name)
        else:
            new = _scan(value, name, found)
        if new is not value:
            out[name] = new
    return out, found
