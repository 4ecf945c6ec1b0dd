"""R4 stale readers and R5 dead writer: processes killed with -9 while holding LMDB
transactions must not block the ledger."""

from __future__ import annotations

import os
import subprocess
import time

import lmdb
import pytest
from rel_common import script

from ledger import Ledger
from ledger.integrity import verify_isolated
from ledger.store import lmdb_env as _lmdb


def _start_holders(args_list):
    procs = [script("rel_holder.py", *args, stdout=subprocess.PIPE) for args in args_list]
    for p in procs:
        assert p.stdout.readline() == b"ready\n", "holder did not start"
    return procs


def _kill(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
        p.stdout.close()
        assert p.returncode == -9


def test_r4_stale_readers(fast_dir):
    path = f"{fast_dir}/r4.ledger"
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    # LMDB sizes the reader table when it creates lock.mdb and only ever grows it; this
    # process opens first, so the table holds 8 slots and stays initialised (and full of
    # stale slots) after the holders die.
    os.unlink(os.path.join(path, "lock.mdb"))
    shared = _lmdb.acquire(path, create=False, max_readers=8)
    try:
        assert shared.env.info()["max_readers"] == 8
        _kill(_start_holders([(path, "read", 8)] * 8))
        with pytest.raises(lmdb.ReadersFullError):
            shared.env.begin()  # the hazard, documented: a raw begin finds no free slot
        with Ledger.open(path, create=False, readonly=True) as ledger:
            assert shared.stale_readers == 8, "reader_check() on open must clear all 8"
            assert ledger.head.seq == 1
            assert ledger.verify().ok
    finally:
        _lmdb.release(shared)


def test_r4_a_full_reader_table_heals_itself_on_read(fast_dir):
    path = f"{fast_dir}/r4b.ledger"
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    os.unlink(os.path.join(path, "lock.mdb"))
    shared = _lmdb.acquire(path, create=False, max_readers=8)
    try:
        with Ledger(path, create=False) as ledger:
            _kill(_start_holders([(path, "read", 8)] * 8))
            assert ledger.head.seq == 1  # ReadersFullError -> reader_check -> retry
            assert shared.stale_readers == 8
    finally:
        _lmdb.release(shared)


def test_r5_dead_writer(fast_dir):
    path = f"{fast_dir}/r5.ledger"
    with Ledger(path) as ledger:
        before = ledger.append([{"type": "study_created", "study": "s"}])
    _kill(_start_holders([(path, "write")]))
    with Ledger(path, create=False) as ledger:
        started = time.monotonic()
        result = ledger.append([{"type": "case_created", "study": "s", "case": "a"}])
        took = time.monotonic() - started
        assert took < 1.0, f"the next append waited {took:.2f} s for a dead writer"
        assert result.head_seq == before.head_seq + 1
        assert [e.seq for e in ledger.read()] == [1, 2]
        with ledger._store.env.read() as txn:
            assert txn.get(b"\xff" * 8, db=ledger._store.env.dbs["events"]) is None
    assert verify_isolated(path).ok
