"""R8 corruption: bit flips, a truncated last page, a zeroed meta page, in copies of a
compacted ledger. ``ledger verify`` must never exit 0 when the stored events (keys or
bytes) or the head changed, must say "corrupt at seq N" or "storage error", and must
never crash, even when reading the damage kills a reader with SIGBUS.

The oracle reads each copy with plain lmdb in its own process (``rel_oracle.py``) and
compares what the store holds with the pristine copy.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from rel_common import script, size

from cli.main import cli
from ledger import Ledger
from ledger.store import lmdb_env as _lmdb

pytestmark = pytest.mark.slow

PAGE = 4096
ERROR = re.compile(r"^(corrupt at seq \d+|storage error)")


class Oracle:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.crashes = 0

    def digest(self, path: str) -> str:
        if self.proc is None:
            self.proc = script("rel_oracle.py", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.proc.stdin.write(path.encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().decode()
        if not line:  # killed by what it read
            self.proc.wait()
            self.crashes += 1
            self.proc = None
            return "unreadable (reader crashed)"
        return line.strip()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


def _pristine(base: str) -> str:
    src = os.path.join(base, "src.ledger")
    with Ledger(src) as ledger:
        ledger.append([{"type": "study_created", "study": s} for s in ("a", "b", "c")])
        rng = random.Random(1)
        for b in range(30):
            ledger.append(
                [
                    {
                        "type": "case_created",
                        "study": "abc"[i % 3],
                        "case": f"{b}-{i}",
                        "params": {"lr": rng.random(), "tag": "t" * rng.randint(0, 200)},
                    }
                    for i in range(rng.randint(1, 12))
                ]
            )
    pristine = os.path.join(base, "pristine")
    os.mkdir(pristine)
    shared = _lmdb.acquire(src, create=False, readonly=True)
    try:
        shared.copy(pristine, compact=True)  # no free pages: every flip hits live data
    finally:
        _lmdb.release(shared)
    return os.path.join(pristine, "data.mdb")


def _mutate(data: bytearray, trial: int, rng: random.Random) -> str:
    if trial % 20 == 0:
        del data[-PAGE:]
        return "truncate"
    if trial % 20 == 10:
        page = rng.randrange(2)
        data[page * PAGE : (page + 1) * PAGE] = bytes(PAGE)
        return "zero-meta"
    flips = (1, 4, 16)[trial % 3]
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"flip{flips}"


def test_r8_corruption_is_never_verified(tmp_path, seed):
    trials = size(150, 2000)
    rng = random.Random(seed)
    pristine_file = _pristine(str(tmp_path))
    pristine = bytes(open(pristine_file, "rb").read())
    oracle = Oracle()
    runner = CliRunner()
    reference = oracle.digest(os.path.dirname(pristine_file))
    assert reference.startswith("ok ")
    outcomes: Counter[str] = Counter()
    samples: list[str] = []
    started = time.monotonic()
    try:
        for trial in range(trials):
            folder = str(tmp_path / f"t{trial}")
            os.mkdir(folder)
            data = bytearray(pristine)
            kind = _mutate(data, trial, rng)
            with open(os.path.join(folder, "data.mdb"), "wb") as fh:
                fh.write(data)
            changed = oracle.digest(folder) != reference
            result = runner.invoke(cli, ["--ledger", folder, "verify", "--json"])
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                f"trial {trial} ({kind}): verify raised {result.exception!r}"
            )
            assert result.exit_code in (0, 1), f"trial {trial}: exit {result.exit_code}"
            report = json.loads(result.stdout)
            if result.exit_code == 0:
                assert report["ok"] is True
                assert not changed, f"trial {trial} ({kind}): verify passed changed content"
                outcomes[f"{kind}: unchanged, verified"] += 1
                continue
            assert report["ok"] is False and ERROR.match(report["error"]), report
            assert result.stderr.startswith("error: "), result.stderr
            outcomes[f"{kind}: {'changed' if changed else 'unchanged'}, detected"] += 1
            if len(samples) < 3 and kind in ("truncate", "zero-meta", "flip1")[len(samples) :]:
                samples.append(folder)
            if trial % 10:
                os.unlink(os.path.join(folder, "data.mdb"))
    finally:
        oracle.close()
    elapsed = time.monotonic() - started
    detected = sum(v for k, v in outcomes.items() if k.endswith("detected"))
    changed = sum(v for k, v in outcomes.items() if ": changed" in k)
    print(
        f"R8: {trials} trials in {elapsed:.1f} s: {changed} changed the stored events or head, "
        f"all {changed} detected; {detected} detected in total; "
        f"{oracle.crashes} oracle reads died of a signal; {dict(sorted(outcomes.items()))}"
    )
    assert changed > trials // 2, "the mutations hardly changed anything: test too weak"
    # The installed command itself, as a user runs it, on a few damaged copies.
    for folder in samples:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "--ledger", folder, "verify"],
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 1, done
        assert done.stderr.decode().startswith("error: "), done.stderr
        assert b"Traceback" not in done.stderr
