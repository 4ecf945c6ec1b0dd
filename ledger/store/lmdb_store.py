"""The embedded backend: one LMDB environment (a folder) per ledger.

The tables of ``ledger.store.base`` are LMDB named databases, laid out exactly as
format 2 ledgers have always been (``docs/storage-format.md``):

    events        be64(first seq) -> block
    study_blocks  study key (16 bytes) || be64(first seq) -> b""
    ids           id key -> be64(seq) [|| digest]
    refs          rules' reference state; b"N" || study key -> the study's name
    meta          b"format_version", b"ledger_id", b"head_seq" (be64), b"head_hash"
    checkpoints, exports, leases, cursors   the tables outside the log

Everything that touches the ``lmdb`` module itself (settings, growth, the shared
environment, error translation) is in ``ledger.store.lmdb_env``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ledger.chain import GENESIS
from ledger.errors import CorruptionError, LedgerError, StorageError

from . import lmdb_env
from .base import AUX_TABLES, WHOLE, BlockParts, Buffer, unknown_table

__all__ = ["LmdbStore"]

T = TypeVar("T")


def _be64(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


class _View:
    """A ReadView (and, in a write transaction, a WriteView) over one LMDB txn."""

    __slots__ = ("dbs", "txn")

    def __init__(self, txn: Any, dbs: dict[str, Any]) -> None:
        self.txn = txn
        self.dbs = dbs

    # -- reads ------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        db = self.dbs["meta"]
        seq = self.txn.get(b"head_seq", db=db)
        h = self.txn.get(b"head_hash", db=db)
        if seq is None or h is None:
            if self.txn.get(b"format_version", db=db) is None:
                return 0, GENESIS  # a ledger being created: the empty log
            raise CorruptionError("the ledger's head is missing from its meta table")
        return int.from_bytes(bytes(seq), "big"), bytes(h)

    def meta(self, key: str) -> bytes | None:
        value = self.txn.get(key.encode(), db=self.dbs["meta"])
        return None if value is None else bytes(value)

    def blocks(
        self, after: int, study_key: bytes | None = None, part: str = WHOLE
    ) -> Iterator[tuple[int, Buffer, bool]]:
        """Whole blocks, whatever ``part``: a view into the map costs nothing."""
        txn, events_db = self.txn, self.dbs["events"]
        if study_key is None:
            found = lmdb_env.block_at_or_before(txn, events_db, _be64(after + 1))
            start = found[0] if found else _be64(0)
            for key, value in lmdb_env.cursor_iter_from(txn, events_db, start):
                yield int.from_bytes(key, "big"), value, False
            return
        index = self.dbs["study_blocks"]
        found = lmdb_env.block_at_or_before(txn, index, study_key + _be64(after + 1))
        if found and bytes(found[0][:16]) == study_key:
            start = bytes(found[0])
        else:
            start = study_key + _be64(after + 1)
        for key, _ in lmdb_env.cursor_iter_from(txn, index, start):
            key = bytes(key)
            if key[:16] != study_key:
                return
            first = key[16:]
            value = txn.get(first, db=events_db)
            if value is None:
                seq = int.from_bytes(first, "big")
                raise CorruptionError(f"study index points at a missing block (seq {seq})", seq=seq)
            yield int.from_bytes(first, "big"), value, False

    def block_at_or_before(self, seq: int) -> tuple[int, Buffer] | None:
        found = lmdb_env.block_at_or_before(self.txn, self.dbs["events"], _be64(seq))
        if found is None:
            return None
        return int.from_bytes(found[0], "big"), found[1]

    def ref(self, key: bytes) -> bytes | None:
        value = self.txn.get(key, db=self.dbs["refs"])
        return None if value is None else bytes(value)

    def refs_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Buffer]]:
        for key, value in lmdb_env.cursor_iter_from(self.txn, self.dbs["refs"], prefix):
            key = bytes(key)
            if not key.startswith(prefix):
                return
            yield key, value

    def _aux(self, table: str) -> Any:
        if table not in AUX_TABLES:
            raise LedgerError(unknown_table(table))
        return self.dbs[table]

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        db = self._aux(table)
        if db is None:  # an optional table an older, read-only ledger does not have
            return None
        value = self.txn.get(key, db=db)
        return None if value is None else bytes(value)

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        db = self._aux(table)
        out: list[tuple[bytes, bytes]] = []
        if db is None:
            return out
        for key, value in lmdb_env.cursor_iter_from(self.txn, db, prefix):
            key = bytes(key)
            if not key.startswith(prefix):
                break
            out.append((key, bytes(value)))
        return out

    def counts(self) -> dict[str, int]:
        stat = self.txn.stat
        return {
            "blocks": stat(self.dbs["events"])["entries"],
            "ids": stat(self.dbs["ids"])["entries"],
        }

    # -- writes -----------------------------------------------------------------------

    def _get_many(self, table: str, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The values of those ``keys`` present in ``table`` (ids or refs)."""
        get, db = self.txn.get, self.dbs[table]
        out = {}
        for key in keys:
            value = get(key, db=db)
            if value is not None:
                out[key] = bytes(value)
        return out

    def ids_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._get_many("ids", keys)

    def ids_insert(self, items: Sequence[tuple[bytes, bytes]]) -> bool:
        if not items:
            return True
        consumed, added = self.txn.cursor(self.dbs["ids"]).putmulti(items, overwrite=False)
        return bool(added == consumed == len(items))

    def refs_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._get_many("refs", keys)

    def refs_put(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        db = self.dbs["refs"]
        for key, value in items:
            lmdb_env.put_checked(self.txn, key, value, db=db)

    def block_put(
        self,
        first_seq: int,
        last_seq: int,
        data: bytes,
        studies: Sequence[bytes],
        parts: BlockParts | None = None,
    ) -> None:
        first = _be64(first_seq)
        lmdb_env.put_checked(self.txn, first, data, db=self.dbs["events"], append=True)
        index = self.dbs["study_blocks"]
        for study_key in studies:
            lmdb_env.put_checked(self.txn, study_key + first, b"", db=index)

    def set_head(self, seq: int, hash_: bytes) -> None:
        db = self.dbs["meta"]
        lmdb_env.put_checked(self.txn, b"head_seq", _be64(seq), db=db)
        lmdb_env.put_checked(self.txn, b"head_hash", hash_, db=db)

    def meta_put(self, key: str, value: bytes) -> None:
        lmdb_env.put_checked(self.txn, key.encode(), value, db=self.dbs["meta"])

    def aux_put(self, table: str, key: bytes, value: bytes) -> None:
        lmdb_env.put_checked(self.txn, key, value, db=self._aux(table))

    def aux_delete(self, table: str, key: bytes) -> None:
        self.txn.delete(key, db=self._aux(table))


class LmdbStore:
    """A ledger folder on a local disk; a path open twice in a process shares one
    environment (LMDB allows one per process)."""

    kind = "lmdb"

    def __init__(
        self,
        path: str,
        *,
        create: bool,
        readonly: bool,
        max_size: int | None,
        map_size: int | None,
        allow_network_fs: bool,
    ) -> None:
        self.path = path
        self.location = path
        self.max_size = max_size
        self.env = lmdb_env.acquire(
            path,
            create=create and not readonly,
            readonly=readonly,
            map_size=map_size,
            allow_network_fs=allow_network_fs,
        )
        self.dbs = self.env.dbs
        self.readonly = readonly or self.env.readonly
        self._closed = False

    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[_View]:  # always a snapshot
        with self.env.read() as txn:
            yield _View(txn, self.dbs)

    def write(self, body: Callable[[Any], T]) -> T:
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only; read-only commands never write")
        return self.env.write(lambda txn: body(_View(txn, self.dbs)), max_size=self.max_size)

    def clock(self) -> float:
        return time.time()

    def check_pid(self) -> None:
        self.env.check_pid()

    def info(self) -> dict[str, Any]:
        info = self.env.info()
        with self.env.read() as txn:
            info["ids"] = txn.stat(self.dbs["ids"])["entries"]
            info["blocks"] = txn.stat(self.dbs["events"])["entries"]
        info["backend"] = self.kind
        return info

    def copy(self, dest: str, *, compact: bool = True) -> None:
        """A consistent snapshot of the environment into the empty folder ``dest``."""
        self.env.copy(dest, compact=compact)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            lmdb_env.release(self.env)

    @staticmethod
    def fspath(location: str | os.PathLike[str]) -> str:
        return os.fspath(location)
