"""An in-process backend: the contract of ``ledger.store.base`` in plain dicts.

For fast tests and for trying the ledger without a disk: ``Ledger("memory:NAME")``.
Like an LMDB path, a name opened twice in one process is one store; it lives until the
process exits. Writes are serialised by a lock and staged in an overlay that is applied
only when the body returns, so a refused batch leaves nothing behind, as on the other
backends.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ledger.errors import LedgerError, LedgerNotFound, StorageError

from .base import AUX_TABLES, WHOLE, BlockParts, Buffer, unknown_table

__all__ = ["MemoryStore"]

T = TypeVar("T")


class _Data:
    """What one named store holds."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.meta: dict[str, bytes] = {}
        self.head: tuple[int, bytes] | None = None
        self.firsts: list[int] = []  # first seq of each block, ascending
        self.blocks: list[tuple[int, bytes]] = []  # (last seq, data), same order
        self.study_blocks: dict[bytes, list[int]] = {}  # study key -> block indices
        self.ids: dict[bytes, bytes] = {}
        self.refs: dict[bytes, bytes] = {}
        self.aux: dict[str, dict[bytes, bytes]] = {t: {} for t in AUX_TABLES}


_registry: dict[str, _Data] = {}
_registry_lock = threading.Lock()


def _check_table(table: str) -> None:
    if table not in AUX_TABLES:
        raise LedgerError(unknown_table(table))


class _ReadView:
    """A snapshot: the head and the blocks committed when it was taken."""

    def __init__(self, data: _Data) -> None:
        self.data = data
        with data.lock:
            self._head = data.head
            self._nblocks = len(data.blocks)

    def head(self) -> tuple[int, bytes]:
        if self._head is None:
            raise StorageError("the ledger's head is missing")
        return self._head

    def meta(self, key: str) -> bytes | None:
        return self.data.meta.get(key)

    def _block_indices(self, after: int, study_key: bytes | None) -> Iterator[int]:
        firsts = self.data.firsts
        start = max(0, bisect.bisect_right(firsts, after + 1, 0, self._nblocks) - 1)
        if study_key is None:
            yield from range(start, self._nblocks)
            return
        for index in self.data.study_blocks.get(study_key, ()):
            if start <= index < self._nblocks:
                yield index

    def blocks(
        self, after: int, study_key: bytes | None = None, part: str = WHOLE
    ) -> Iterator[tuple[int, Buffer, bool]]:
        data = self.data
        for index in self._block_indices(after, study_key):
            yield data.firsts[index], data.blocks[index][1], False

    def block_at_or_before(self, seq: int) -> tuple[int, Buffer] | None:
        index = bisect.bisect_right(self.data.firsts, seq, 0, self._nblocks) - 1
        if index < 0:
            return None
        return self.data.firsts[index], self.data.blocks[index][1]

    def ref(self, key: bytes) -> bytes | None:
        return self.data.refs.get(key)

    def refs_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Buffer]]:
        with self.data.lock:
            items = sorted((k, v) for k, v in self.data.refs.items() if k.startswith(prefix))
        yield from items

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        _check_table(table)
        return self.data.aux[table].get(key)

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        _check_table(table)
        with self.data.lock:
            return sorted((k, v) for k, v in self.data.aux[table].items() if k.startswith(prefix))

    def counts(self) -> dict[str, int]:
        return {"blocks": self._nblocks, "ids": len(self.data.ids)}


class _WriteView(_ReadView):
    """Changes staged over the committed data, applied by ``apply``."""

    def __init__(self, data: _Data) -> None:
        super().__init__(data)
        self.new_head: tuple[int, bytes] | None = None
        self.new_meta: dict[str, bytes] = {}
        self.new_blocks: list[tuple[int, int, bytes, Sequence[bytes]]] = []
        self.new_ids: dict[bytes, bytes] = {}
        self.new_refs: dict[bytes, bytes] = {}
        self.new_aux: dict[tuple[str, bytes], bytes | None] = {}

    def head(self) -> tuple[int, bytes]:
        return self.new_head or super().head()

    def meta(self, key: str) -> bytes | None:
        return self.new_meta.get(key, self.data.meta.get(key))

    def ref(self, key: bytes) -> bytes | None:
        return self.new_refs.get(key, self.data.refs.get(key))

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        _check_table(table)
        if (table, key) in self.new_aux:
            return self.new_aux[(table, key)]
        return self.data.aux[table].get(key)

    def ids_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        ids = self.data.ids
        return {k: ids[k] for k in keys if k in ids}

    def ids_insert(self, items: Sequence[tuple[bytes, bytes]]) -> bool:
        ids, new = self.data.ids, self.new_ids
        for key, value in items:
            if key in ids or key in new:
                return False
            new[key] = value
        return True

    def refs_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        out = {}
        for key in keys:
            value = self.ref(key)
            if value is not None:
                out[key] = value
        return out

    def refs_put(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        self.new_refs.update(items)

    def block_put(
        self,
        first_seq: int,
        last_seq: int,
        data: bytes,
        studies: Sequence[bytes],
        parts: BlockParts | None = None,
    ) -> None:
        self.new_blocks.append((first_seq, last_seq, bytes(data), tuple(studies)))

    def set_head(self, seq: int, hash_: bytes) -> None:
        self.new_head = (seq, bytes(hash_))

    def meta_put(self, key: str, value: bytes) -> None:
        self.new_meta[key] = bytes(value)

    def aux_put(self, table: str, key: bytes, value: bytes) -> None:
        _check_table(table)
        self.new_aux[(table, bytes(key))] = bytes(value)

    def aux_delete(self, table: str, key: bytes) -> None:
        _check_table(table)
        self.new_aux[(table, bytes(key))] = None

    def apply(self) -> None:
        """Make the staged changes visible (called with the data's lock held)."""
        data = self.data
        data.meta.update(self.new_meta)
        data.ids.update(self.new_ids)
        data.refs.update(self.new_refs)
        for first, last, block, studies in self.new_blocks:
            index = len(data.blocks)
            data.blocks.append((last, block))
            data.firsts.append(first)
            for study_key in studies:
                data.study_blocks.setdefault(study_key, []).append(index)
        for (table, key), value in self.new_aux.items():
            if value is None:
                data.aux[table].pop(key, None)
            else:
                data.aux[table][key] = value
        if self.new_head is not None:
            data.head = self.new_head


class MemoryStore:
    """``memory:NAME``: a named in-process store."""

    kind = "memory"

    def __init__(self, name: str, data: _Data, *, readonly: bool) -> None:
        self.location = name
        self.readonly = readonly
        self._data = data

    @classmethod
    def open(cls, location: str, *, create: bool, readonly: bool) -> MemoryStore:
        with _registry_lock:
            data = _registry.get(location)
            if data is None:
                if not create:
                    raise LedgerNotFound(
                        f"no ledger at {location}; an in-memory ledger exists once a process "
                        "created it (create=True)"
                    )
                data = _registry[location] = _Data()
        return cls(location, data, readonly=readonly)

    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[_ReadView]:  # always a snapshot
        yield _ReadView(self._data)

    def write(self, body: Callable[[Any], T]) -> T:
        if self.readonly:
            raise StorageError(f"{self.location} is open read-only; read-only commands never write")
        with self._data.lock:
            view = _WriteView(self._data)
            if view._head is None:
                view.new_head = (0, bytes(32))  # a new store: the empty log
            result = body(view)
            view.apply()
            return result

    def clock(self) -> float:
        return time.time()

    def check_pid(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        with self._data.lock:
            return {
                "backend": self.kind,
                "blocks": len(self._data.blocks),
                "ids": len(self._data.ids),
            }

    def close(self) -> None:
        return None

    @staticmethod
    def drop(location: str) -> None:
        """Forget the store named ``location`` (tests)."""
        with _registry_lock:
            _registry.pop(location, None)
