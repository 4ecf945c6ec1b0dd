"""Make exported files safe to open: cells, names, paths and secrets.

An export leaves the ledger's control: a spreadsheet evaluates cells that look like
formulas (OWASP "CSV injection"), a study name chooses a folder name, and a config may
carry a credential. Everything that turns ledger data into something a user opens goes
through this module, so the rules live in one place and the tests can hold them.

Errors (defined in ``projections.errors``, re-exported here):

    ledger.errors.LedgerError
    └── ExportError           an export cannot be written as asked
        └── UnsafePathError   a name or path would leave the output folder
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from projections.errors import ExportError as ExportError
from projections.errors import UnsafePathError as UnsafePathError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_SECRET_WORDS",
    "REDACTED",
    "TEMP_LIKE",
    "TRIGGERS",
    "ExportError",
    "UnsafePathError",
    "assign_folder_names",
    "confine",
    "is_secret_key",
    "needs_neutralising",
    "neutralise_array",
    "neutralise_cell",
    "redact_for_export",
    "redaction_report",
    "safe_name",
    "short_hash",
    "unneutralise_cell",
]


# --------------------------------------------------------------------------- cells

#: First characters that make a spreadsheet evaluate, or silently split, a text cell.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")

# A cell is prefixed when, after any leading apostrophes, it starts with a trigger and is
# not a plain negative number. Counting the apostrophes makes the rule invertible: a text
# that already reads "'=x" gets a second apostrophe, so stripping one always restores it.
_TRIGGERED_RE = r"^'*[=+\-@\t\r\n\x00]"
_NEGATIVE_NUMBER_RE = r"^'*-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_TRIGGERED = re.compile(r"'*[=+\-@\t\r\n\x00]")
_NEGATIVE_NUMBER = re.compile(r"'*-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def needs_neutralising(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula (docs/reliability.md, pitfall 12).

    A negative number such as ``-1.5e3`` is data, not a formula, and stays as it is.
    """
    return _TRIGGERED.match(text) is not None and _NEGATIVE_NUMBER.fullmatch(text) is None


def neutralise_cell(text: str) -> str:
    """Prefix ``'`` to a text cell a spreadsheet would evaluate; other texts are unchanged."""
    return "'" + text if needs_neutralising(text) else text


def unneutralise_cell(text: str) -> str:
    """Invert :func:`neutralise_cell` exactly (for readers that want the original text)."""
    if text.startswith("'") and needs_neutralising(text[1:]):
        return text[1:]
    return text


def neutralise_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """:func:`neutralise_cell` over an Arrow string column, without a per-row Python loop.

    The first byte of every value is read straight from the Arrow buffers with numpy;
    only rows starting with a trigger or ``'`` go through the two regex kernels, so a
    clean column costs one pass over its offsets and is returned as it is (no copy).
    Nulls stay null; dictionary columns are neutralised in their dictionary only.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([neutralise_array(c) for c in arr.chunks], type=arr.type)
    if pa.types.is_dictionary(arr.type):
        return pa.DictionaryArray.from_arrays(
            arr.indices, neutralise_array(arr.dictionary), ordered=arr.type.ordered
        )
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    if len(arr) == 0:
        return arr
    candidates = _first_byte_in(arr, _CANDIDATE_BYTES)
    if not candidates.any():
        return arr
    sel = pa.array(candidates)
    subset = pc.filter(arr, sel)
    triggered = pc.match_substring_regex(subset, _TRIGGERED_RE)
    numeric = pc.match_substring_regex(subset, _NEGATIVE_NUMBER_RE)
    hit = pc.fill_null(pc.and_(triggered, pc.invert(numeric)), False).to_numpy(zero_copy_only=False)
    if not hit.any():
        return arr
    rows = np.flatnonzero(candidates)[hit]
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    quote, empty = pa.scalar("'", arr.type), pa.scalar("", arr.type)
    prefixed = pc.binary_join_element_wise(quote, pc.filter(subset, pa.array(hit)), empty)
    return pc.replace_with_mask(arr, pa.array(mask), prefixed)


_CANDIDATE_BYTES = b"=+-@\t\r\n\x00'"


def _first_byte_in(arr: pa.Array, byte_set: bytes) -> Any:
    """Which non-null, non-empty values of a string array start with one of ``byte_set``."""
    import numpy as np
    import pyarrow as pa

    offset_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(
        offsets_buf,
        dtype=offset_type,
        count=len(arr) + 1,
        offset=arr.offset * np.dtype(offset_type).itemsize,
    )
    starts, ends = offsets[:-1], offsets[1:]
    nonempty = ends > starts
    if data_buf is None or not nonempty.any():
        return np.zeros(len(arr), dtype=bool)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    first = data[np.where(nonempty, starts, 0)]
    out = nonempty & np.isin(first, np.frombuffer(byte_set, dtype=np.uint8))
    if arr.null_count:
        out &= arr.is_valid().to_numpy(zero_copy_only=False)
    return out


# --------------------------------------------------------------------------- names

MAX_NAME_LENGTH = 120
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
)


def short_hash(text: str, length: int = 8) -> str:
    """A stable hex digest of ``text`` (BLAKE2b; never Python's seeded ``hash``)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32)
    return digest.hexdigest()[:length]


def _ascii_fold(text: str) -> str:
    # "é" -> "e" rather than "_": keep what a reader recognises; the rest is replaced.
    out = []
    for ch in text:
        if ch < "\x80":
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base.isascii() and base else "_")
    return "".join(out)


#: The names :mod:`projections.export.snapshot` gives its temporary folders. A snapshot
#: folder never looks like one, so the cleanup of killed exports can never take it.
TEMP_LIKE = re.compile(r".+\.(?:old\.)?tmp-[0-9a-f]{8}")


def _not_temp_like(text: str) -> str:
    # The last character of a temporary name is a hex digit; "_" never is.
    return text[:-1] + "_" if TEMP_LIKE.fullmatch(text) else text


def _with_suffix(base: str, original: str, length: int, max_length: int) -> str:
    suffix = "-" + short_hash(original, length)
    return _not_temp_like(base[: max_length - len(suffix)] + suffix)


def safe_name(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A file or folder name made from a study name, safe on Linux, macOS and Windows.

    NFKC folds look-alikes first (full-width ``／`` becomes ``/``, which is then
    replaced); only ``[A-Za-z0-9._-]`` survive; leading dots go (no ``.``, ``..`` or hidden
    files), as do trailing dots (Windows drops them); Windows device names (``CON``,
    ``nul.txt``) get a ``_`` prefix. A name that had to be cut, or kept no letter or
    digit, ends with a short hash of the original so it still says which study it was.
    A name shaped like an export's temporary folder (``x.tmp-0123abcd``, see
    :data:`TEMP_LIKE`) ends with ``_`` instead of its last digit, so that no snapshot
    folder is ever taken for a killed export's leftover. The result is never empty and
    is a fixed point: ``safe_name(safe_name(x)) == safe_name(x)``.
    """
    if max_length < 24:
        raise ValueError("max_length must be at least 24")
    text = _ascii_fold(unicodedata.normalize("NFKC", name))
    text = _UNSAFE_CHARS.sub("_", text).lstrip(".").rstrip(".")
    if not text:
        text = "_"
    if text.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    if len(text) > max_length or not any(c.isalnum() for c in text):
        text = _with_suffix(text, name, 8, max_length).rstrip(".")
    return _not_temp_like(text)


def assign_folder_names(names: Iterable[str], max_length: int = MAX_NAME_LENGTH) -> dict[str, str]:
    """Map each name to a distinct safe folder name, the same for the same set of names.

    Names whose safe forms collide (case-insensitively, as on macOS and Windows) all get
    a short hash of their original name, so no study silently takes another's folder and
    the result does not depend on the order the names came in. Hashes lengthen until
    every folder is distinct.
    """
    unique = sorted(set(names))
    final = {n: safe_name(n, max_length) for n in unique}
    length = 8
    while True:
        groups: dict[str, list[str]] = {}
        for original, folder in final.items():
            groups.setdefault(folder.casefold(), []).append(original)
        clashing = sorted(n for group in groups.values() if len(group) > 1 for n in group)
        if not clashing:
            return final
        if length > 64:  # distinct names with equal BLAKE2b-256 digests: not on this planet
            raise ExportError(f"cannot give distinct folder names to {clashing!r}")
        for original in clashing:
            final[original] = _with_suffix(
                safe_name(original, max_length), original, length, max_length
            )
        length *= 2


def confine(base: str | os.PathLike[str], relative: str | os.PathLike[str]) -> Path:
    """The resolved path of ``relative`` under ``base``; raise if it would leave ``base``.

    Symlinks are resolved before the check, so a link that points outside is refused
    rather than followed. ``base`` itself is not a valid target: every snapshot file and
    folder lives strictly inside it.

    Raises:
        UnsafePathError: absolute paths, ``..`` escapes, NUL bytes, symlinks leading out,
            symlink loops.
    """
    rel = os.fspath(relative)
    where = f"{rel!r} under {os.fspath(base)!r}"
    if "\0" in rel:
        raise UnsafePathError(f"path {where} contains a NUL byte; use safe_name() for names")
    try:
        root = Path(base).resolve()
        target = (root / rel).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops: RuntimeError before 3.13
        raise UnsafePathError(f"path {where} cannot be resolved: {exc}") from None
    if target == root or root not in target.parents:
        raise UnsafePathError(
            f"path {where} resolves to {os.fspath(target)!r}, outside the output folder; "
            "exports only write inside --out"
        )
    return target


# --------------------------------------------------------------------------- secrets

REDACTED = "[redacted]"

#: Whole words of a key that mark its value as secret (docs/architecture.md, Append-time rules; plus ``key`` below).
DEFAULT_SECRET_WORDS = frozenset(
    {
        "apikey",
        "authorization",
        "credential",
        "credentials",
        "passphrase",
        "passwd",
        "password",
        "privatekey",
        "secret",
        "secrets",
        "token",
    }
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_SPLIT = re.compile(r"[_\-.\s/:]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SECRET_VALUE = re.compile(
    r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:[^/\s@]+@"  # a URL with a password
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|^(?:Bearer|Basic|Token)\s+\S{8,}"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _SPLIT.split(_CAMEL.sub("_", key)) if w]


def is_secret_key(key: str) -> bool:
    """Does ``key`` name a secret? Whole words only, split on ``_ - .`` and camelCase.

    ``token`` is a whole word: ``auth_token`` and ``authToken`` are secret, ``max_tokens``
    and ``tokenizer`` are not. ``key`` counts when it is the key's last word (``key``,
    ``api_key``, ``ssh_key``, ``signingKey``): the value *is* a key. Where ``key``
    qualifies another word (``key_dim``, ``key_size``, ``key_file``) the value is a
    hyperparameter or a path, and is kept.
    """
    words = _words(key)
    if not words:
        return False
    if words[-1] == "key" or any(w in DEFAULT_SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if _IDENT.fullmatch(text):
        return f"{path}.{text}"
    import json

    return f"{path}[{json.dumps(text, ensure_ascii=False)}]"


def redact_for_export(
    obj: Any,
    extra_patterns: Sequence[str] = (),
    enabled: bool = True,
    *,
    root: str = "$",
) -> tuple[Any, list[str]]:
    """A copy of ``obj`` with secret-looking values replaced by ``"[redacted]"``.

    Values are redacted under keys that :func:`is_secret_key` flags or that match one of
    ``extra_patterns`` (``--redact PATTERN``: fnmatch-style, case-insensitive, tried on the
    key and on its full path such as ``$.config.db.host``), and string values shaped like
    a URL with a password, a PEM private key or an HTTP ``Authorization`` value. The
    whole value under a secret key goes, nested containers included.

    Returns the redacted copy and the sorted paths that were redacted (for the
    manifest). With ``enabled=False`` the object is returned as it is, with no paths.
    The input is never modified.
    """
    if not enabled:
        return obj, []
    patterns = [p.lower() for p in extra_patterns]
    found: list[str] = []

    def matches(key: str, path: str) -> bool:
        if is_secret_key(key):
            return True
        lk, lp = key.lower(), path.lower()
        return any(fnmatch.fnmatchcase(lk, p) or fnmatch.fnmatchcase(lp, p) for p in patterns)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                child = _child_path(path, str(k))
                if matches(str(k), child):
                    found.append(child)
                    out[k] = REDACTED
                else:
                    out[k] = walk(v, child)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(v, _child_path(path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and _SECRET_VALUE.search(value):
            found.append(path)
            return REDACTED
        return value

    redacted = walk(obj, root)
    return redacted, sorted(set(found))


def redaction_report(
    paths: Iterable[str], extra_patterns: Sequence[str] = (), enabled: bool = True
) -> dict[str, Any]:
    """The manifest's ``redacted`` entry: what was redacted, and by which rules."""
    return {
        "enabled": enabled,
        "rules": {
            "secret_words": sorted(DEFAULT_SECRET_WORDS) if enabled else [],
            "last_word": ["key"] if enabled else [],
            "patterns": sorted(extra_patterns) if enabled else [],
            "values": ["url-with-password", "pem-private-key", "authorization-header"]
            if enabled
            else [],
        },
        "paths": sorted(set(paths)),
    }
