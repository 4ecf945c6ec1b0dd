"""R12: the same tables give the same bytes in another process, time zone, hash seed and second.

Two interpreters write a full snapshot (CSV, Parquet, JSON, xlsx and the manifest) at
least two seconds apart (zip timestamps have a two-second resolution) with different
``PYTHONHASHSEED``, ``TZ`` and locale; every file must be byte-identical. C code does
not see a patched ``time.time``, so the clock is varied for real, and the formats'
metadata is checked to hold no time at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
import pyarrow as pa
from projections.export.manifest import build_manifest
from projections.export.safety import assign_folder_names, redact_for_export, redaction_report
from projections.export.snapshot import write_snapshot
from projections.export.writers import XlsxSpec, write_xlsx

rng = np.random.default_rng(42)
n = 2000
cases = [f"case-{i % 37:02d}" for i in range(n)]
metrics = pa.table({
    "study": ["=evil study"] * n,
    "case": cases,
    "run": [c + "/r1" for c in cases],
    "stage": pa.array([i % 4 for i in range(n)], pa.int64()),
    "metric": [["loss", "@acc", "-wns"][i % 3] for i in range(n)],
    "step": pa.array([None if i % 11 == 0 else i for i in range(n)], pa.int64()),
    "value": np.where(np.arange(n) % 97 == 0, np.nan, rng.standard_normal(n) * 1e3),
})
config = {"lr": 0.1, "api_key": "CANARY", "tags": {"b", "a", "c"}, "max_tokens": 8}
redacted_config, paths = redact_for_export(config)
study = {"study": "=evil study", "config": redacted_config, "values": [0.1, float("inf")]}
summary = pa.table({"stage": [0, 1, 2, 3], "best": [0.9, 0.7, 0.65, 0.6]})
rankings = pa.table({"rank": [1, 2], "case": ["=a", "b"], "score": [0.6, 0.65]})

def xlsx(path):
    write_xlsx({"summary": summary, "cases": metrics.slice(0, 50), "runs": metrics.slice(50, 50),
                "rankings": rankings, "comparisons": summary}, path, XlsxSpec(title="=evil study"))

def manifest(files):
    return build_manifest(ledger_id="L", study="=evil study", as_of=12, head_hash="00" * 32,
                          files=files, redacted=redaction_report(paths))

folder = assign_folder_names(["=evil study", "_evil study"])["=evil study"]
write_snapshot(sys.argv[1], folder, {
    "metrics.csv": metrics, "metrics.parquet": metrics, "study.json": study, "report.xlsx": xlsx,
}, manifest=manifest)
print(folder)
"""


def run_export(out: Path, hash_seed: str, tz: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, TZ=tz, LC_ALL="C", LANG="C")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, os.fspath(out), os.fspath(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_two_processes_write_identical_bytes(tmp_path):
    start = time.monotonic()
    folder_a = run_export(tmp_path / "a", "1", "UTC")
    time.sleep(max(0.0, 2.1 - (time.monotonic() - start)))
    folder_b = run_export(tmp_path / "b", "4242", "KIR-14")  # POSIX TZ: UTC+14
    assert folder_a == folder_b
    a, b = tmp_path / "a" / folder_a, tmp_path / "b" / folder_b
    names = sorted(os.listdir(a))
    assert names == [
        "manifest.json",
        "metrics.csv",
        "metrics.parquet",
        "report.xlsx",
        "study.json",
    ]
    assert sorted(os.listdir(b)) == names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"

    for name in names:  # the secret never reaches any exported byte
        assert b"CANARY" not in (a / name).read_bytes()
    with zipfile.ZipFile(a / "report.xlsx") as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"1980-01-01T00:00:00Z" in z.read("docProps/core.xml")
    meta = pq.ParquetFile(a / "metrics.parquet").metadata
    assert set(meta.metadata) == {b"ARROW:schema", b"pandas"}  # pandas: our Int64 hint
    assert b"version" not in meta.metadata[b"pandas"]
    assert "version" in meta.created_by and ":" not in meta.created_by  # no time of day
