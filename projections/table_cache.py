"""A bounded, in-process cache of built Arrow tables, keyed by the log prefix they fold.

``ledger sql`` builds its tables by folding the log up to a position; the same query
(or another over the same tables) at the same position folds the same events into the
same tables. A process that queries repeatedly — a notebook, a dashboard, a server —
keeps them here and pays the fold once per log position instead of once per query.

Sound by its key, not by invalidation: an entry is found by the log's chain hash after
the position it was built at (which commits to every event up to it: seq, id, time and
content, ``ledger.chain``), the position and the study. A different log prefix —
appended since, rolled back, rewritten, another ledger — has another hash and can never
be served; the same prefix in another ledger (a replica) gives the same tables, so it
may share them. Arrow tables are immutable, so a served table cannot have been changed
by an earlier query.

Bounded: at most ``max_bytes`` of tables (their Arrow buffers), least recently used out
first; a table larger than the whole budget is never kept. Thread-safe (one lock
around the bookkeeping; building happens outside it).

Not across processes: the CLI runs each ``ledger sql`` in a new process, which starts
with an empty cache. Read-only commands write nothing to the ledger (as with
checkpoints, docs/architecture.md, Projections); the second level,
:mod:`projections.disk_cache`, keeps the tables in files outside it for later
processes.

This module imports nothing from ``projections``: the caller chooses the key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_MAX_BYTES", "TableCache"]

DEFAULT_MAX_BYTES = 512 << 20
"""Half a GiB: the tables of a study of ~10^7 metric values (about 50 bytes a value)."""


class TableCache:
    """Named tables per key (``key -> {name: table}``), least recently used out first."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Hashable, str], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        """The bytes of the tables held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, names: Iterable[str]) -> dict[str, Any]:
        """The tables of ``names`` held for ``key`` (those missing are absent)."""
        out: dict[str, Any] = {}
        with self._lock:
            for name in names:
                found = self._entries.get((key, name))
                if found is not None:
                    self._entries.move_to_end((key, name))
                    out[name] = found[0]
        return out

    def put(self, key: Hashable, tables: Mapping[str, Any]) -> None:
        """Keep ``tables`` for ``key``, evicting the least recently used to fit."""
        with self._lock:
            for name, table in tables.items():
                size = int(table.nbytes)
                old = self._entries.pop((key, name), None)
                if old is not None:
                    self._bytes -= old[1]
                if size > self.max_bytes:
                    continue
                self._entries[(key, name)] = (table, size)
                self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (_, size) = self._entries.popitem(last=False)
                self._bytes -= size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
