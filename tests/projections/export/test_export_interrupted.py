"""An export killed part-way (issue 18): SIGTERM cleans up before the process dies, and
what a SIGKILL leaves — a ``<folder>.tmp-XXXXXXXX`` of ours whose writer is gone — is
removed by the next export. Folders that are not ours, or whose writer still runs, stay.

Real processes throughout: a writer held inside ``write_snapshot`` by a slow file, and
``ledger export`` itself on a study large enough to be caught while it writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ledger import Ledger
from projections.export.manifest import verify_manifest
from projections.export.snapshot import write_snapshot

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TABLE = pa.table({"case": ["a", "b"], "value": [0.5, -1.0]})


def _leftovers(out: Path) -> list[str]:
    return sorted(n for n in os.listdir(out) if ".tmp-" in n)


def _slow_writer(out: Path, folder: str = "s") -> subprocess.Popen:
    """A process inside write_snapshot, writing a file that never finishes."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {os.fspath(ROOT)!r})
        import pyarrow as pa
        from projections.export.snapshot import write_snapshot
        def slow(path):
            path.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)
        write_snapshot({os.fspath(out)!r}, {folder!r},
                       {{"a.csv": pa.table({{"x": [1]}}), "b.json": slow}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_sigterm_mid_write_removes_the_temporary_folder_then_dies_of_it(tmp_path):
    proc = _slow_writer(tmp_path)
    assert len(_leftovers(tmp_path)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # killed by the signal, as before
    assert _leftovers(tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_sigkill_leftover_is_removed_by_the_next_export(tmp_path):
    proc = _slow_writer(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    (left,) = _leftovers(tmp_path)
    assert left.startswith("s.tmp-")
    write_snapshot(tmp_path, "other", {"a.csv": TABLE})  # any export into the folder
    assert _leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["other"]


def test_a_live_writers_temporary_folder_is_kept(tmp_path):
    proc = _slow_writer(tmp_path)
    try:
        (mine,) = _leftovers(tmp_path)
        write_snapshot(tmp_path, "one", {"a.csv": TABLE})
        assert _leftovers(tmp_path) == [mine]  # its writer still runs
    finally:
        proc.kill()
        proc.wait(timeout=30)
    write_snapshot(tmp_path, "two", {"a.csv": TABLE})
    assert _leftovers(tmp_path) == []


def test_folders_that_are_not_ours_are_kept(tmp_path):
    keep = {
        "notes.tmp-1234abcd": {"thesis.tex": b"precious"},  # a file we never write
        "s.tmp-xyz": {"a.csv": b"x"},  # not our name
        "s.tmp-0123456789": {"a.csv": b"x"},  # not our name either (8 hex digits)
        "deep.tmp-aaaaaaaa": {"sub/a.csv": b"x"},  # we never write folders
    }
    for folder, files in keep.items():
        for rel, data in files.items():
            (tmp_path / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / folder / rel).write_bytes(data)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "a.csv").write_text("not ours either")
    (tmp_path / "link.tmp-bbbbbbbb").symlink_to(tmp_path / "target")
    (tmp_path / "file.tmp-cccccccc").write_text("a file")
    before = sorted(os.listdir(tmp_path))
    write_snapshot(tmp_path, "s", {"a.csv": TABLE})
    assert sorted(os.listdir(tmp_path)) == sorted([*before, "s"])
    assert (tmp_path / "notes.tmp-1234abcd" / "thesis.tex").read_bytes() == b"precious"
    assert (tmp_path / "target" / "a.csv").read_text() == "not ours either"


# ------------------------------------------------------------ the real `ledger export`


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory) -> Path:
    """A study whose export takes a while: 40 runs x 2,000 steps x 3 metrics."""
    path = tmp_path_factory.mktemp("interrupted") / "big.ledger"
    rng = np.random.default_rng(5)
    t0 = 1_714_521_600
    with Ledger(path) as led:
        led.append(
            [
                {"type": "study_created", "study": "big", "ts": t0},
                {"type": "case_created", "study": "big", "case": "c", "ts": t0},
            ]
        )
        for r in range(40):
            run = f"r{r:02d}"
            batch = [{"type": "run_started", "study": "big", "case": "c", "run": run, "ts": t0}]
            values = rng.random((2000, 3)).tolist()
            batch += [
                {
                    "type": "metrics_recorded",
                    "study": "big",
                    "run": run,
                    "step": step,
                    "values": dict(zip(("loss", "acc", "lr"), row)),
                    "ts": t0 + step,
                }
                for step, row in enumerate(values)
            ]
            batch.append(
                {"type": "run_finished", "study": "big", "run": run, "status": "completed"}
            )
            led.append(batch)
    return path


def _export(ledger: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cli.main", "--ledger", os.fspath(ledger), "export"]
    cmd += ["--study", "big", "--format", "all", "--out", os.fspath(out)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_while_writing(ledger: Path, out: Path, sig: int) -> subprocess.Popen:
    """Start `ledger export`, send ``sig`` once its temporary folder holds a file."""
    out.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        proc = _export(ledger, out)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            tmp = [out / n for n in _leftovers(out)]
            if tmp and any(os.scandir(tmp[0])):
                proc.send_signal(sig)
                proc.wait(timeout=60)
                return proc
            time.sleep(0.002)
        proc.wait(timeout=60)
    pytest.fail("the export finished before it could be interrupted, five times")


def test_sigterm_during_ledger_export_leaves_nothing_behind(big_ledger, tmp_path):
    proc = _kill_while_writing(big_ledger, tmp_path / "out", signal.SIGTERM)
    assert proc.returncode == -signal.SIGTERM
    assert os.listdir(tmp_path / "out") == []


def test_sigkill_during_ledger_export_is_cleaned_by_the_next_one(big_ledger, tmp_path):
    out = tmp_path / "out"
    proc = _kill_while_writing(big_ledger, out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert len(_leftovers(out)) == 1
    again = _export(big_ledger, out)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    assert os.listdir(out) == ["big"]
    assert verify_manifest(out / "big") == []
