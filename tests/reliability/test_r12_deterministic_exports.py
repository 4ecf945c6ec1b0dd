"""R12 deterministic exports: CSV, JSON and Parquet written twice (in spawned processes
with other hash seeds and time zones), and from a ledger built by a writer killed with
-9 and resumed and then replicated with ``log --json | append``, are byte-identical;
the manifest's checksums and head match."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import time

import pytest
from rel_common import ROOT, script

from ledger import Ledger

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("cli.commands.export") is None,
        reason="R12 needs the `ledger export` command (cli/commands/export.py), not wired yet",
    ),
]
BATCHES = 40


def _start_export(path: str, out: str, hash_seed: str, tz: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, TZ=tz)
    args = ["--format", "json", "--format", "csv", "--format", "parquet", "--out", out]
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--ledger", path, "export", "--study", "chip", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _digests(proc: subprocess.Popen[bytes], path: str, out: str) -> dict[str, str]:
    """SHA-256 of every exported file, with this ledger's id masked (each ledger has its
    own id, which study.json and the manifest record)."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    with Ledger(path, create=False, readonly=True) as ledger:
        ledger_id = ledger.ledger_id.encode()
    digests = {}
    for root, _, files in os.walk(out):
        for name in files:
            full = os.path.join(root, name)
            data = open(full, "rb").read().replace(ledger_id, b"<ledger-id>")
            digests[os.path.relpath(full, out)] = hashlib.sha256(data).hexdigest()
    return digests


def _killed_and_resumed(path: str, acks: str, seed: int) -> int:
    rng = random.Random(seed)
    kills = 0
    for _ in range(6):
        proc = script("rel_study_writer.py", path, acks, 1, BATCHES, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, 0.05))
        proc.kill()
        proc.wait()
        proc.stdout.close()
        kills += proc.returncode == -9
    final = script("rel_study_writer.py", path, acks, 1, BATCHES, stdout=subprocess.DEVNULL)
    assert final.wait(timeout=120) == 0
    return kills


def test_r12_exports_are_byte_identical(tmp_path, seed):
    clean, crashed, replica = (
        str(tmp_path / n) for n in ("clean.ledger", "crashed.ledger", "replica.ledger")
    )
    proc = script(
        "rel_study_writer.py", clean, tmp_path / "acks-clean", 1, BATCHES, stdout=subprocess.DEVNULL
    )  # writes its own ledger while the other one is killed and resumed
    try:
        kills = _killed_and_resumed(crashed, str(tmp_path / "acks-crashed"), seed)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    assert proc.wait(timeout=120) == 0
    log = subprocess.Popen(  # log --json | append -, both started at once
        [sys.executable, "-m", "cli.main", "--ledger", crashed, "log", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    with log:
        subprocess.run(
            [sys.executable, "-m", "cli.main", "--ledger", replica, "append", "-"],
            cwd=ROOT,
            stdin=log.stdout,
            capture_output=True,
            check=True,
            timeout=120,
        )
    assert log.wait(timeout=120) == 0
    heads = []
    for path in (clean, crashed, replica):
        with Ledger(path, create=False, readonly=True) as ledger:
            heads.append(ledger.head)
            assert ledger.verify().ok
    assert heads[0] == heads[1] == heads[2], "the same events must give the same chain"

    runs = [
        (clean, "e1", "0", "UTC"),
        (clean, "e2", "12345", "Asia/Kolkata"),
        (crashed, "e3", "777", "America/Los_Angeles"),
        (replica, "e4", "31337", "Pacific/Chatham"),
    ]
    procs = [_start_export(p, str(tmp_path / o), h, tz) for p, o, h, tz in runs]  # at once
    first, second, third, fourth = (
        _digests(proc, p, str(tmp_path / o)) for proc, (p, o, _, _) in zip(procs, runs)
    )
    assert first == second, "two exports of one ledger differ"
    for other in (third, fourth):
        assert {k: v for k, v in other.items() if not k.endswith("manifest.json")} == {
            k: v for k, v in first.items() if not k.endswith("manifest.json")
        }, "an export of the crashed-and-resumed (or replicated) ledger differs"
    manifests = [
        os.path.join(r, "manifest.json")
        for r, _, f in os.walk(tmp_path / "e1")
        if "manifest.json" in f
    ]
    assert len(manifests) == 1
    manifest = json.load(open(manifests[0]))
    folder = os.path.dirname(manifests[0])
    assert manifest["as_of"] == heads[0].seq and manifest["head_hash"] == heads[0].hash
    for name, entry in manifest["files"].items():
        data = open(os.path.join(folder, name), "rb").read()  # unmasked
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), name
    print(f"R12: {len(first)} files byte-identical across 4 exports; {kills} kills of the writer")
