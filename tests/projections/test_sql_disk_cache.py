"""The disk level of ``ledger sql``'s table cache (projections/disk_cache.py): a later
process reads the tables an earlier one built at the same log position, and never a
table of another prefix, a damaged file, or anything at all when it is turned off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from test_sql import count_reads  # noqa: E402

from ledger import Ledger  # noqa: E402
from projections import disk_cache  # noqa: E402
from projections.sql import TABLE_CACHE, query  # noqa: E402

T0 = 1_700_000_000
SQL = (
    "SELECT m.run, r.status, sum(m.value) AS s, count(*) AS n, max(e.seq) AS last "
    "FROM metrics m JOIN runs r USING (study, run) JOIN events e USING (seq) GROUP BY ALL"
)


def _events(shift: float = 0.0) -> list[dict]:
    ev: list[dict] = [
        {"type": "study_created", "study": "s", "ts": T0},
        {"type": "case_created", "study": "s", "case": "a", "params": {"k": 1}, "ts": T0},
    ]
    for r in range(3):
        run = f"a{r}"
        ev.append({"type": "run_started", "study": "s", "case": "a", "run": run, "ts": T0 + r})
        for step in range(4):
            ev.append({"type": "metrics_recorded", "study": "s", "run": run, "step": step,
                       "values": {"loss": r + step / 10 + shift}, "ts": T0 + r})  # fmt: skip
        ev.append({"type": "run_finished", "study": "s", "run": run, "status": "completed",
                   "ts": T0 + r})  # fmt: skip
    return ev


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch):
    """Each test starts as a new process would: no tables in memory, no folder known
    to be unwritable."""
    TABLE_CACHE.clear()
    monkeypatch.setattr(disk_cache, "_UNWRITABLE", set())
    yield
    TABLE_CACHE.clear()


@pytest.fixture
def own(tmp_path: Path):
    with Ledger(str(tmp_path / "d.ledger")) as ledger:
        ledger.append(_events())
        yield ledger


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.arrow"))


def test_a_later_process_reads_the_tables_instead_of_folding(own, monkeypatch, _table_cache_dir):
    first = query(own, SQL)
    assert len(_files(_table_cache_dir)) == 3  # metrics, runs, events
    TABLE_CACHE.clear()  # a new process
    reads = count_reads(own, monkeypatch)
    hits = disk_cache.STATS["hits"]
    again = query(own, SQL)
    assert reads == [] and disk_cache.STATS["hits"] == hits + 3
    assert again.equals(first) and again.to_pylist() == first.to_pylist()
    assert query(own, SQL, cache=False).equals(first) and reads  # cache=False folds
    for path in _files(_table_cache_dir):
        assert path.stat().st_mode & 0o077 == 0  # the user's alone: tables hold results


def test_cache_false_and_off_write_nothing(own, monkeypatch, _table_cache_dir, tmp_path):
    query(own, SQL, cache=False)
    assert _files(_table_cache_dir) == []
    monkeypatch.setenv("LEDGER_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert disk_cache.from_env() is None
    first = query(own, SQL)
    TABLE_CACHE.clear()
    reads = count_reads(own, monkeypatch)
    assert query(own, SQL).equals(first) and reads  # folded again: nothing was kept
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_the_folder_follows_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("LEDGER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache._folder() == tmp_path / "xdg" / "results-ledger" / "tables"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert disk_cache._folder() == tmp_path / "home" / ".cache" / "results-ledger" / "tables"
    monkeypatch.setenv("LEDGER_CACHE_MAX_BYTES", "12345")
    assert disk_cache._max_bytes() == 12345
    monkeypatch.setenv("LEDGER_CACHE_MAX_BYTES", "a lot")
    assert disk_cache._max_bytes() == disk_cache.DEFAULT_MAX_BYTES


def test_another_prefix_is_never_served(own, tmp_path):
    """The key holds the chain hash at the position and the ledger id: an append, an
    earlier as-of, and another ledger of as many events all get tables of their own."""
    before = own.head.seq
    was = query(own, SQL).to_pylist()
    early = query(own, SQL, as_of=before - 5).to_pylist()
    TABLE_CACHE.clear()
    assert early != was and early == query(own, SQL, as_of=before - 5, cache=False).to_pylist()
    own.append([
        {"type": "run_started", "study": "s", "case": "a", "run": "a9", "ts": T0},
        {"type": "metrics_recorded", "study": "s", "run": "a9", "values": {"loss": 7.0}, "ts": T0},
    ])  # fmt: skip
    TABLE_CACHE.clear()
    now = query(own, SQL).to_pylist()
    assert now != was and now == query(own, SQL, cache=False).to_pylist()
    TABLE_CACHE.clear()
    assert query(own, SQL, as_of=before).to_pylist() == was
    with Ledger(str(tmp_path / "other.ledger")) as other:
        other.append(_events(shift=1.0))
        assert other.head.seq == before
        TABLE_CACHE.clear()
        got = query(other, SQL).to_pylist()
        assert got != was and got == query(other, SQL, cache=False).to_pylist()


def test_a_damaged_file_is_removed_and_rebuilt(own, monkeypatch, _table_cache_dir):
    expected = query(own, SQL)
    paths = _files(_table_cache_dir)
    truncated, garbage, swapped = paths
    swapped.write_bytes(truncated.read_bytes())  # a whole file, of another key
    truncated.write_bytes(truncated.read_bytes()[:-100])
    garbage.write_bytes(os.urandom(garbage.stat().st_size))
    dropped = disk_cache.STATS["dropped"]
    TABLE_CACHE.clear()
    reads = count_reads(own, monkeypatch)
    assert query(own, SQL).equals(expected) and reads
    assert disk_cache.STATS["dropped"] == dropped + 3
    assert _files(_table_cache_dir) == paths  # rebuilt and written again, whole
    TABLE_CACHE.clear()
    reads.clear()
    assert query(own, SQL).equals(expected) and reads == []


def test_a_file_of_other_columns_is_dropped(own, _table_cache_dir):
    """A file with the right key but columns this code does not build (a table format
    changed without its version) is dropped, not handed to DuckDB."""
    import pyarrow as pa

    expected = query(own, "SELECT count(*) AS n FROM runs")
    (path,) = _files(_table_cache_dir)
    key = _schema(path).metadata[disk_cache.META_KEY]
    disk_cache._write(path.parent, path, key, pa.table({"x": [1]}))  # a whole, summed file
    assert _schema(path).names == ["x"]
    TABLE_CACHE.clear()
    assert query(own, "SELECT count(*) AS n FROM runs").equals(expected)
    assert _schema(path).names[0] == "study"


def _schema(path: Path):
    """The schema of a cache file (past its header)."""
    import pyarrow as pa

    body = pa.memory_map(str(path)).read_buffer().slice(disk_cache.HEADER)
    return pa.ipc.open_file(pa.BufferReader(body)).schema


def test_a_flipped_bit_in_a_cached_value_is_a_refold_never_a_wrong_figure(
    own, monkeypatch, _table_cache_dir
):
    """Arrow's validation checks offsets, not values: the file's XXH3 sum is what
    catches a value the disk changed (as a ledger block's sums do)."""
    sql = "SELECT run, step, value FROM metrics ORDER BY run, step"
    expected = query(own, sql)
    (path,) = _files(_table_cache_dir)
    data = bytearray(path.read_bytes())
    values = expected.column("value").to_numpy().tobytes()
    at = bytes(data).find(values[8:16])  # one float64 of the value column, as stored
    assert at > disk_cache.HEADER
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    dropped = disk_cache.STATS["dropped"]
    TABLE_CACHE.clear()
    reads = count_reads(own, monkeypatch)
    assert query(own, sql).equals(expected) and reads
    assert disk_cache.STATS["dropped"] == dropped + 1


def test_the_budget_evicts_the_least_recently_used(tmp_path):
    import pyarrow as pa

    cache = disk_cache.DiskCache(tmp_path / "c", max_bytes=0)
    table = pa.table({"v": list(range(1000))})
    assert not cache.put(["big"], table)  # larger than the whole budget: not kept
    sizes = []
    for i, name in enumerate(["a", "b", "c"]):
        cache.max_bytes = 1 << 30
        assert cache.put([name], table)
        os.utime(cache.path([name]), (T0 + i, T0 + i))  # written in this order
        sizes.append(cache.path([name]).stat().st_size)
    assert cache.get(["a"]) is not None  # a hit touches: a is now the most recent
    stale = tmp_path / "c" / ".dead-writer.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (T0, T0))
    cache.max_bytes = sizes[0] * 2
    cache.evict()
    assert not cache.path(["b"]).exists() and not stale.exists()
    assert cache.path(["a"]).exists() and cache.path(["c"]).exists()
    assert cache.get(["b"]) is None and cache.get(["c"]).equals(table)


def test_an_unwritable_folder_turns_the_disk_level_off_silently(own, tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder would be")
    monkeypatch.setenv("LEDGER_CACHE_DIR", str(blocked / "tables"))
    expected = query(own, SQL, cache=False)
    assert query(own, SQL).equals(expected)
    assert capsys.readouterr() == ("", "")  # the library says nothing
    assert disk_cache.unwritable() == [str(blocked / "tables")]
    assert disk_cache.from_env() is None  # and stops trying for the process


def test_a_log_that_moved_under_the_build_is_not_written(own, monkeypatch, _table_cache_dir):
    hashes = iter(["a" * 64, "b" * 64])
    monkeypatch.setattr(own, "hash_at", lambda seq: next(hashes))
    query(own, "SELECT count(*) FROM runs")
    assert _files(_table_cache_dir) == []
