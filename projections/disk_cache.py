"""The second level of ``ledger sql``'s table cache: Arrow IPC files on disk.

Each ``ledger sql`` command is a new process, so the in-process cache
(:mod:`projections.table_cache`) starts empty and every command folds the log again.
This level keeps the built tables in files a later process maps instead of folding.

Outside the ledger, on purpose: read-only commands never write into a ledger (as with
checkpoints, docs/architecture.md, Projections). The folder is ``$LEDGER_CACHE_DIR``,
else ``$XDG_CACHE_HOME/results-ledger/tables``, else
``~/.cache/results-ledger/tables``; ``LEDGER_CACHE_DIR=off`` turns this level off.

Sound by its key, as the in-process level: one file per key (the caller's: for ``ledger
sql`` the tables' format, the ledger id, the chain hash at the position, the position,
the study and the table), named by a hash of it. The key is also stored in the file's
schema metadata and compared on read, so a name collision or a file copied under
another name cannot serve the wrong table.

Never an error, never a wrong answer: a file that fails to read (truncated, not Arrow,
another key, a schema the caller rejects, offsets or dictionary indices out of bounds
under Arrow's full validation — about 4 ms for a million rows, so DuckDB never reads
past a buffer, or bytes that no longer match the XXH3-64 sum in the file's 64-byte
header, as every ledger block is checked) is removed and counts as a miss: a flipped
bit in a cached value is a refold, never a wrong figure (the sum costs ~4 ms for a
million rows, read from pages DuckDB reads next anyway). Written to
a temporary file in the same folder, fsynced, then renamed over the name, so a reader
sees a whole file or none and two processes writing the same entry both succeed (the
tables are the same). Read with memory mapping: the table's buffers are the page
cache's, nothing is copied; a file removed or replaced while mapped stays readable.

Bounded: after each write, the files over ``LEDGER_CACHE_MAX_BYTES`` (default 1 GiB) go,
least recently used first (by mtime; a hit touches its file). A folder that cannot be
created or written turns this level off for the rest of the process, silently:
``unwritable()`` names it for a command that wants to say so once.

This module imports nothing from ``projections``: the caller chooses the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xxhash import xxh3_64_intdigest

__all__ = ["DEFAULT_MAX_BYTES", "DiskCache", "STATS", "from_env", "unwritable"]

DEFAULT_MAX_BYTES = 1 << 30
"""1 GiB: the tables of a few studies of ~10^7 metric values (about 50 bytes a value)."""
META_KEY = b"results-ledger.cache-key"
MAGIC = b"RLTABLE1"
HEADER = 64
"""Bytes before the Arrow file: MAGIC, the XXH3-64 of the Arrow bytes, zeros; 64 keeps
the Arrow buffers as aligned in the mapped file as Arrow wrote them."""
SUFFIX = ".arrow"
STALE_TEMP_SECONDS = 3600.0
"""A temporary file this old was left by a writer that died: eviction removes it."""

STATS = {"hits": 0, "misses": 0, "writes": 0, "dropped": 0}
"""What this process's disk level did (hits, misses, writes, unreadable files dropped):
the evidence a test reads, not timing."""
_UNWRITABLE: set[str] = set()


def from_env() -> DiskCache | None:
    """The disk level the environment asks for, or None when it is off: read at each
    call, so a test (or a caller) can point it elsewhere without restarting."""
    folder = _folder()
    if folder is None or str(folder) in _UNWRITABLE:
        return None
    return DiskCache(folder, _max_bytes())


def unwritable() -> list[str]:
    """The folders this process found unwritable (and so stopped using)."""
    return sorted(_UNWRITABLE)


def _folder() -> Path | None:
    explicit = os.environ.get("LEDGER_CACHE_DIR", "")
    if explicit.strip().lower() == "off":
        return None
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "results-ledger" / "tables"


def _max_bytes() -> int:
    """``LEDGER_CACHE_MAX_BYTES``, or the default when unset or not a whole number (a
    typo must not stop a query)."""
    try:
        return max(0, int(os.environ.get("LEDGER_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES)))
    except ValueError:
        return DEFAULT_MAX_BYTES


class DiskCache:
    """Arrow tables in ``folder``, one file per key, at most ``max_bytes`` in all."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path(self, key: Sequence[Any]) -> Path:
        return self.folder / (hashlib.sha256(_key_text(key)).hexdigest()[:40] + SUFFIX)

    def get(self, key: Sequence[Any], accept: Callable[[Any], bool] | None = None) -> Any:
        """The table stored for ``key``, or None. A file that does not read back as the
        table of this key (or whose schema ``accept`` refuses) is removed."""
        path = self.path(key)
        try:
            table = _read(path, _key_text(key))
        except FileNotFoundError:
            table = None
        except Exception:  # noqa: BLE001 - any unreadable file is a miss, never an error
            table = None
            self._drop(path)
        else:
            if accept is not None and not accept(table.schema):
                table = None
                self._drop(path)
        if table is None:
            STATS["misses"] += 1
            return None
        STATS["hits"] += 1
        _touch(path)
        return table

    def put(self, key: Sequence[Any], table: Any) -> bool:
        """Store ``table`` for ``key`` (not one larger than the whole budget), then
        evict to the budget. False when nothing was stored; an unwritable folder also
        turns this level off for the process."""
        if table.nbytes > self.max_bytes:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write(self.folder, self.path(key), _key_text(key), table)
        except OSError:
            _UNWRITABLE.add(str(self.folder))
            return False
        except Exception:  # noqa: BLE001 - a table Arrow cannot store is just not kept
            return False
        STATS["writes"] += 1
        self.evict()
        return True

    def evict(self) -> None:
        """Remove the least recently used files until the rest fit the budget, and
        temporary files left by writers that died."""
        now = time.time()
        files = []
        for entry in _scan(self.folder):
            st = _stat(entry)
            if st is None:
                continue
            if entry.name.endswith(SUFFIX):
                files.append((st.st_mtime, st.st_size, entry.path))
            elif entry.name.startswith(".") and now - st.st_mtime > STALE_TEMP_SECONDS:
                _remove(entry.path)
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            _remove(path)
            total -= size

    def _drop(self, path: Path) -> None:
        STATS["dropped"] += 1
        _remove(path)


def _key_text(key: Sequence[Any]) -> bytes:
    return json.dumps(list(key), separators=(",", ":")).encode()


def _read(path: Path, key: bytes) -> Any:
    """The table in ``path``, memory mapped; ValueError when its stored key is not
    ``key``. The stored key is taken off the schema: the table is as it was built."""
    import pyarrow as pa  # type: ignore[import-untyped]

    with pa.memory_map(str(path), "r") as source:
        mapped = source.read_buffer()
    body = mapped.slice(HEADER)
    head = mapped.slice(0, HEADER).to_pybytes()
    if (
        len(head) < HEADER
        or head[:8] != MAGIC
        or int.from_bytes(head[8:16], "little") != (xxh3_64_intdigest(memoryview(body)))
    ):
        raise ValueError(f"{path}: not a whole cache file (header or sum)")
    table = pa.ipc.open_file(pa.BufferReader(body)).read_all()
    meta = dict(table.schema.metadata or {})
    if meta.pop(META_KEY, None) != key:
        raise ValueError(f"{path}: another key")
    table.validate(full=True)  # offsets and indices in bounds: nothing reads past a buffer
    return table.replace_schema_metadata(meta or None)


def _write(folder: Path, path: Path, key: bytes, table: Any) -> None:
    """Write ``table`` to a temporary file in ``folder``, fsync it, rename it to
    ``path``: a reader sees the whole file or none, and the last of two writers wins
    with the same bytes."""
    import pyarrow as pa  # type: ignore[import-untyped]

    meta = {**(table.schema.metadata or {}), META_KEY: key}
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    # a stacked table's chunks can carry different dictionaries; a file holds one
    options = pa.ipc.IpcWriteOptions(unify_dictionaries=True)
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    body = sink.getvalue()
    head = MAGIC + xxh3_64_intdigest(memoryview(body)).to_bytes(8, "little")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head.ljust(HEADER, b"\0"))
            out.write(memoryview(body))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


def _stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return entry.stat()
    except OSError:  # removed by another process meanwhile
        return None


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only folder still serves; its order just does not change
        pass


def _remove(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
