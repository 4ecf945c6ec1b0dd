"""Secret redaction before an event is hashed and stored.

The log is immutable, so a secret that reaches it stays forever (RELIABILITY.md item 13):
values under secret-looking keys, and values shaped like well-known credentials, are
replaced before the id, the hash and the stored bytes are computed. Keys are split into
words on ``_``, ``-``, ``.``, spaces and camelCase, and matched as whole words, so
``auth_token`` is redacted and ``max_tokens`` or ``key_dim`` are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "is_secret_key", "looks_like_secret", "redact"]

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

_SPLIT = re.compile(r"[_\-.\s/:]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

_SECRET_VALUE = re.compile(
    "|".join(
        [
            r"\b[a-zA-Z][a-zA-Z0-9+.\-]{0,30}://[^/\s:@]{0,256}:[^/\s@]{1,256}@",  # URL with a password
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{22,}",
            r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab
            r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
            r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI / Anthropic style
            r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
            r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
            r"\bhf_[A-Za-z]{30,}",  # Hugging Face
            r"\bnpm_[A-Za-z0-9]{36}",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            r"^(?:Bearer|Basic|Token)\s+\S{8,}",
        ]
    )
)


def _words(key: str) -> list[str]:
    return [w.lower() for w in _SPLIT.split(_CAMEL.sub("_", key)) if w]


def is_secret_key(key: str) -> bool:
    words = _words(key)
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def looks_like_secret(value: str) -> bool:
    return _SECRET_VALUE.search(value) is not None


def redact(obj: Any, *, path: str = "", found: list[str] | None = None) -> tuple[Any, list[str]]:
    """A copy of ``obj`` with secrets replaced, and the dotted paths that were redacted.

    The input is never modified, so a caller's config dict stays as it was.
    """
    found = [] if found is None else found
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and is_secret_key(key) and value is not None:
                out[key] = REDACTED
                found.append(sub)
            else:
                out[key] = redact(value, path=sub, found=found)[0]
        return out, found
    if isinstance(obj, list):
        return [redact(v, path=f"{path}[{i}]", found=found)[0] for i, v in enumerate(obj)], found
    if isinstance(obj, str) and obj != REDACTED and looks_like_secret(obj):
        found.append(path)
        return REDACTED, found
    return obj, found


def needs_redaction(obj: Any) -> bool:
    """Cheap pre-check so that events without secrets are not copied."""
    if isinstance(obj, dict):
        return any(
            (isinstance(k, str) and is_secret_key(k)) or needs_redaction(v) for k, v in obj.items()
        )
    if isinstance(obj, list):
        return any(needs_redaction(v) for v in obj)
    if isinstance(obj, str):
        return looks_like_secret(obj)
    return False


def redact_fields(fields: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Redact several named top-level fields at once (``config``, ``params``...)."""
    out: dict[str, Any] = {}
    found: list[str] = []
    for name, value in fields:
        if value is not None and needs_redaction(value):
            out[name] = redact(value, path=name, found=found)[0]
    return out, found
