"""Files hashed while they are written: the manifest's SHA-256 must be the file's.

The writers feed a :class:`HashingFile` instead of having the snapshot read each file
back; these tests pin that the streamed digest is the digest of the bytes on disk
(over many writer buffers, for every format), that the bytes are those a path gives,
and that only the workbook is still read back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from seeded_study import seeded_events

from ledger import Ledger
from projections.export import hashing_sink
from projections.export import snapshot as snapshot_mod
from projections.export.api import export_study
from projections.export.csv_writer import write_csv
from projections.export.hashing_sink import HashingFile, sink_name, write_hashed
from projections.export.json_writer import canonical_json, write_json
from projections.export.manifest import file_info, read_manifest
from projections.export.parquet_writer import write_parquet
from projections.export.snapshot import write_snapshot


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def big_table(n: int = 5000) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table(
        {
            "run": pa.array([f"=r{i % 37}" for i in range(n)]),
            "step": pa.array(np.arange(n), pa.int64()),
            "value": pa.array(rng.lognormal(0.0, 3.0, n)),
        }
    )


class CountingFile(HashingFile):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0

    def write(self, data):  # type: ignore[no-untyped-def]
        self.writes += 1
        return super().write(data)


@pytest.mark.parametrize("chunk", [1000, 1 << 20], ids=["background-thread", "inline"])
@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("t.csv", lambda t, sink: write_csv(t, sink, batch_rows=700)),
        ("t.parquet", lambda t, sink: write_parquet(t, sink)),
        ("t.json", lambda t, sink: write_json(t.to_pydict(), sink)),
    ],
)
def test_streamed_digest_is_the_digest_of_the_file_and_its_bytes_are_the_paths(
    tmp_path, monkeypatch, name, write, chunk
):
    """Small chunks send most bytes through the background thread; 1 MiB keeps
    these small files in the writer's thread (no thread is started)."""
    monkeypatch.setattr(hashing_sink, "CHUNK_BYTES", chunk)
    table = big_table()
    direct = tmp_path / f"direct-{name}"
    write(table, direct)
    path = tmp_path / name
    with CountingFile(path) as sink:
        rows = write(table, sink)
    info = sink.info(rows)
    if name != "t.json":
        assert sink.writes > 1  # many writer buffers went through the digest
    assert (sink._thread is not None) == (path.stat().st_size >= chunk)
    assert path.read_bytes() == direct.read_bytes()
    assert info.sha256 == sha(path) == file_info(path).sha256
    assert info.bytes == path.stat().st_size
    assert info.rows == (None if name == "t.json" else table.num_rows)


def test_write_hashed_counts_rows_only_when_the_writer_returns_an_int(tmp_path):
    assert write_hashed(tmp_path / "a.csv", lambda s: write_csv(big_table(10), s)).rows == 10
    assert write_hashed(tmp_path / "b.json", lambda s: write_json({"a": 1}, s)).rows is None
    assert write_hashed(tmp_path / "c", lambda s: True).rows is None
    info = write_hashed(tmp_path / "b.json", lambda s: write_json({"a": 1}, s))
    assert info.sha256 == hashlib.sha256(canonical_json({"a": 1})).hexdigest()


def test_sink_name_is_the_path_in_messages(tmp_path):
    from projections.export.safety import ExportError

    with HashingFile(tmp_path / "m.parquet") as sink:
        assert sink_name(sink) == str(tmp_path / "m.parquet")
        schema = pa.schema([pa.field("missing", pa.int64())])
        with pytest.raises(ExportError, match=r"m\.parquet.*lacks column"):
            write_parquet(big_table(3), sink, schema=schema)


def test_export_manifest_lists_the_sha256_of_every_file_on_disk(tmp_path, monkeypatch):
    """Over a study whose metrics span many CSV and Parquet writer buffers, and with
    only the workbook hashed from disk (the rest was hashed while written)."""
    read_back: list[str] = []
    real = snapshot_mod.file_info

    def spy(path, rows=None):
        read_back.append(Path(path).name)
        return real(path, rows)

    monkeypatch.setattr(snapshot_mod, "file_info", spy)
    monkeypatch.setattr(hashing_sink, "CHUNK_BYTES", 1 << 16)
    with Ledger(tmp_path / "l.ledger") as led:
        led.append(seeded_events("chip", steps=400))
        export_study(led, "chip", tmp_path / "out", journal=False)
    folder = tmp_path / "out" / "chip"
    manifest = read_manifest(folder)
    assert manifest["files"]["metrics.csv"]["rows"] > 4 * 1024
    assert manifest["files"]["metrics.csv"]["bytes"] > 1 << 18
    for name in sorted(p.name for p in folder.iterdir()):
        if name == "manifest.json":
            continue
        entry = manifest["files"][name]
        assert entry["sha256"] == sha(folder / name), name
        assert entry["bytes"] == (folder / name).stat().st_size, name
    assert read_back == ["report.xlsx"]


def test_snapshot_rehashes_a_file_changed_after_its_writer_hashed_it(tmp_path):
    def sneaky(path: Path):
        info = write_hashed(path, lambda sink: write_csv(big_table(50), sink))
        with open(path, "ab") as fh:
            fh.write(b"appended after hashing\n")
        return info

    snap = write_snapshot(
        tmp_path,
        "s",
        {"a.csv": sneaky, "b.json": {"k": [1, 2]}, "c.bin": b"raw"},
        manifest=lambda infos: {"files": {n: i.to_json() for n, i in infos.items()}},
    )
    for name, info in snap.files.items():
        assert info.sha256 == sha(snap.path / name), name
    assert snap.files["a.csv"].rows == 50
    assert snap.files["b.json"].sha256 == hashlib.sha256(canonical_json({"k": [1, 2]})).hexdigest()


class FullDisk:
    def __init__(self, real):
        self.real = real

    def write(self, data):
        raise OSError(28, "No space left on device")

    def close(self):
        self.real.close()


@pytest.mark.parametrize("chunk", [100, 1 << 20], ids=["background-thread", "inline"])
def test_a_write_error_reaches_the_writer_and_the_file_is_closed(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(hashing_sink, "CHUNK_BYTES", chunk)
    sink = HashingFile(tmp_path / "full.csv")
    sink._file = FullDisk(sink._file)
    with pytest.raises(OSError, match="No space left"):
        with sink:
            for _ in range(50):
                sink.write(b"x" * 64)
    assert sink.closed and sink._file.real.closed
    if sink._thread is not None:
        assert not sink._thread.is_alive()


def test_the_writers_error_wins_over_a_write_error(tmp_path, monkeypatch):
    from projections.export.safety import ExportError

    monkeypatch.setattr(hashing_sink, "CHUNK_BYTES", 1 << 20)
    with pytest.raises(ExportError, match="cannot hold"):
        with HashingFile(tmp_path / "x.csv") as sink:
            sink._file = FullDisk(sink._file)
            sink.write(b"header\n")
            write_csv(pa.table({"nested": [[1, 2]]}), sink)


def test_info_before_close_is_refused(tmp_path):
    from projections.export.safety import ExportError

    with HashingFile(tmp_path / "x") as sink:
        with pytest.raises(ExportError, match="before close"):
            sink.info()
