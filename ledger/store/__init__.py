"""Storage backends behind one small interface (``ledger.store.base``).

``open_store(location)`` picks the backend from the location: a ``postgresql://`` URL
is a shared ledger on PostgreSQL (``postgres_store``), ``memory:`` an in-process one
for fast tests (``memory_store``), anything else a folder holding an LMDB environment
(``lmdb_store``). Backends are imported on first use, so ``import ledger`` loads
neither lmdb nor psycopg.
"""

from __future__ import annotations

import os
from typing import Any

from .base import AUX_TABLES, ReadView, Store, WriteView
from .location import is_url, mask

__all__ = ["AUX_TABLES", "ReadView", "Store", "WriteView", "is_url", "mask", "open_store"]

MEMORY_PREFIX = "memory:"


def open_store(
    location: str | os.PathLike[str],
    *,
    create: bool = True,
    readonly: bool = False,
    max_size: int | None = None,
    map_size: int | None = None,
    allow_network_fs: bool = False,
) -> Any:
    """The backend for ``location``. Raises ``LedgerNotFound`` when ``create`` is false
    and nothing is there, ``StoreUnavailable`` when a server cannot be reached, and the
    backend's own ``StorageError`` subclasses."""
    if is_url(location):
        from .postgres_store import PostgresStore

        return PostgresStore(str(location), create=create and not readonly, readonly=readonly)
    if isinstance(location, str) and location.startswith(MEMORY_PREFIX):
        from .memory_store import MemoryStore

        return MemoryStore.open(location, create=create and not readonly, readonly=readonly)
    from .lmdb_store import LmdbStore

    return LmdbStore(
        os.fspath(location),
        create=create,
        readonly=readonly,
        max_size=max_size,
        map_size=map_size,
        allow_network_fs=allow_network_fs,
    )
