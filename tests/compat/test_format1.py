"""Format 1 ledgers (blocks without metric columns) still read, export and verify the same,
and become format 2 with their next append.

No LMDB file is committed: the golden log is appended, then every block is rewritten to
layout 1 — what a format 1 release wrote: magic ``LB\\x01`` and no columns — and the
meta's format version set back to 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compat_golden import EXPORTS, GOLDEN, cli, observe_exports

from ledger import Ledger
from ledger.blocks import MAGIC_V1, BlockView
from ledger.log import FORMAT_VERSION
from projections.base import build_many
from projections.study import builtin_projections


def to_format1(path: Path) -> int:
    """Rewrite every block of the ledger at ``path`` as a format 1 release stored it."""
    with Ledger(path) as led:
        events, meta = led._store.dbs["events"], led._store.dbs["meta"]

        def rewrite(txn) -> int:
            blocks = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=events)]
            for key, raw in blocks:
                block = BlockView(int.from_bytes(key, "big"), raw)
                assert block.version == 3  # layout 1: no checksums (bytes 39-62), no columns
                txn.put(key, MAGIC_V1 + raw[3:39] + raw[63 : block.data_end], db=events)
            ids = led._store.dbs["ids"]
            for key, value in [(bytes(k), bytes(v)) for k, v in txn.cursor(db=ids)]:
                if len(value) == 8:  # format 1 kept the digest in every entry
                    txn.put(key, value + key, db=ids)
            txn.put(b"format_version", b"1", db=meta)
            return len(blocks)

        return led._store.env.write(rewrite)


def block_versions(path: Path) -> list[int]:
    with Ledger(path, readonly=True) as led, led._store.env.read() as txn:
        return [
            BlockView(int.from_bytes(k, "big"), v).version
            for k, v in txn.cursor(db=led._store.dbs["events"])
        ]


def snapshots(path: Path) -> list[bytes]:
    with Ledger(path, readonly=True) as led:
        return [p.snapshot() for p in build_many(led, builtin_projections(), checkpoints=False)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("format1")
    new, old = root / "new.ledger", root / "old.ledger"
    for path in (new, old):
        cli(path, "append", str(GOLDEN))
    assert to_format1(old) >= 1
    return new, old


def test_a_format1_ledger_reads_and_verifies_as_before(pair) -> None:
    new, old = pair
    assert set(block_versions(old)) == {1} and set(block_versions(new)) == {3}
    with Ledger(old, readonly=True) as led:
        assert led.format_version == 1
    assert cli(old, "log", "--json").stdout_bytes == cli(new, "log", "--json").stdout_bytes
    report = json.loads(cli(old, "verify", "--json").stdout)
    assert report["ok"]
    assert report["head_hash"] == json.loads(cli(new, "verify", "--json").stdout)["head_hash"]
    assert snapshots(old) == snapshots(new)


def test_a_format1_ledger_exports_the_same_bytes(pair, tmp_path) -> None:
    new, old = pair
    with Ledger(new) as a, Ledger(old) as b:
        ids = a.ledger_id, b.ledger_id
    got_new = observe_exports(new, ids[0], tmp_path / "new")
    got_old = observe_exports(old, ids[1], tmp_path / "old")
    assert set(got_old["exports"]) == set(EXPORTS)
    assert got_old["exports"] == got_new["exports"]
    assert got_old["version_dependent"] == got_new["version_dependent"]


def test_a_format1_id_index_still_deduplicates(pair, tmp_path) -> None:
    """Format 1 id entries hold seq and digest (24 bytes); format 2 drops the digest when
    the key is the digest. Re-sending the golden log to a format 1 ledger is still all
    duplicates, and a changed event under an old id is still a conflict."""
    _, old = pair
    copy = tmp_path / "copy.ledger"
    cli(old, "backup", str(tmp_path / "b"))
    cli(old, "restore", str(tmp_path / "b"), str(copy))
    with Ledger(copy, readonly=True) as led, led._store.env.read() as txn:
        sizes = {len(v) for _, v in txn.cursor(db=led._store.dbs["ids"])}
    assert sizes == {24}
    head = json.loads(cli(copy, "verify", "--json").stdout)["head_seq"]
    again = json.loads(cli(copy, "append", "--json", str(GOLDEN)).stdout)
    assert again["appended"] == 0 and again["head_seq"] == head
    first = json.loads(cli(copy, "log", "--json").stdout.splitlines()[0])
    changed = {**first, "description": "changed"}
    refused = cli(copy, "append", "-", input=json.dumps(changed).encode() + b"\n", ok=False)
    assert refused.exit_code == 1 and "already in the log" in refused.stderr


def test_an_append_makes_it_current_and_keeps_the_old_blocks(pair) -> None:
    _, old = pair
    before = cli(old, "log", "--json").stdout_bytes
    line = {"type": "study_created", "study": "after-upgrade", "ts": "2026-01-01T00:00:00Z"}
    cli(old, "append", "-", input=json.dumps(line).encode() + b"\n")
    with Ledger(old, readonly=True) as led:
        assert led.format_version == FORMAT_VERSION == 3
    versions = block_versions(old)
    assert versions[-1] == 3 and set(versions[:-1]) == {1}
    after = cli(old, "log", "--json").stdout_bytes
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    assert json.loads(cli(old, "verify", "--json").stdout)["ok"]
