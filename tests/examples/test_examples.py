"""Each example is run for real; the test asserts what it left in the ledger."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.summary import fold_studies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _state(path, study):
    with Ledger(path, create=False) as ledger:
        assert ledger.verify().ok
        return fold_studies(ledger.read(study=study))[study], list(ledger.read(study=study))


def test_shell_runner_appends_once(tmp_path):
    ledger_bin = shutil.which("ledger", path=str(Path(sys.executable).parent))
    assert ledger_bin, "the ledger console script is installed beside the interpreter"
    env = _env() | {"LEDGER_PATH": str(tmp_path / "sh.ledger"), "LEDGER": ledger_bin}
    first = subprocess.run(
        ["bash", str(EXAMPLES / "shell_runner.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert first.stdout.startswith("appended 13 events")
    again = subprocess.run(
        ["bash", str(EXAMPLES / "shell_runner.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.startswith("appended 0 events (13 duplicates skipped)")
    st, envs = _state(str(tmp_path / "sh.ledger"), "shell-sweep")
    finals = {e.event.run: e.event.values for e in envs if e.event.TYPE == "metrics_recorded"}
    assert finals == {
        "n=1000/1": {"primes": 168, "density": 0.168},
        "n=2000/1": {"primes": 303, "density": 0.1515},
        "n=4000/1": {"primes": 550, "density": 0.1375},
    }


@pytest.mark.slow
def test_multiprocess_sweep(tmp_path):
    path = str(tmp_path / "mp.ledger")
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "multiprocess_sweep.py"),
            "--ledger",
            path,
            "--workers",
            "3",
            "--cases",
            "9",
        ],
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    st, envs = _state(path, "parallel-sweep")
    assert len(st.cases) == 9
    assert sorted(r.status for r in st.runs.values()) == ["completed"] * 9
    steps = {}
    for e in envs:
        if e.event.TYPE == "metrics_recorded" and e.event.step is not None:
            steps.setdefault(e.event.run, []).append(e.event.step)
    assert all(v == list(range(10)) for v in steps.values()) and len(steps) == 9


def _head(path: str) -> int:
    """The ledger's head seq as another process sees it (0 before it exists)."""
    from ledger.errors import LedgerError

    try:
        with Ledger(path, create=False, readonly=True) as led:
            return led.head.seq
    except LedgerError:
        return 0


def _run_runner(path, *extra, timeout=60):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "runner.py"), "--ledger", path, *extra],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_runner_runs_then_appends_nothing(tmp_path):
    path = str(tmp_path / "r.ledger")
    assert _run_runner(path, "--pause", "0").stdout.strip() == "done"
    head = Ledger(path, create=False).head
    assert _run_runner(path, "--pause", "0").stdout.strip() == "done"
    assert Ledger(path, create=False).head == head


@pytest.mark.slow
def test_runner_survives_sigkill_at_random_points(tmp_path):
    """20 kill -9 at random moments, then a clean finish: every case completed exactly
    once, every completed run's finals recorded exactly once, no run left open."""
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    print(f"KILL_SEED={seed}")
    rng = random.Random(seed)
    path = str(tmp_path / "k.ledger")
    kills = int(os.environ.get("KILLS", "200" if os.environ.get("SOAK") else "20"))
    args = [
        sys.executable,
        str(EXAMPLES / "runner.py"),
        "--ledger",
        path,
        "--cases",
        "40",
        "--steps",
        "40",
        "--pause",
        "0.005",
    ]
    killed = 0
    for _ in range(kills):
        before = _head(path)
        proc = subprocess.Popen(
            args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # The random moment counts from the runner's first commit, not from its launch:
        # on a loaded machine start-up alone can outlast a fixed window, and every kill
        # would then land before any run began (the test would prove nothing).
        deadline = time.monotonic() + 30
        while proc.poll() is None and _head(path) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.7))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    done = _run_runner(path, "--cases", "40", "--steps", "40", "--pause", "0", timeout=120)
    assert done.stdout.strip() == "done", done.stderr
    st, envs = _state(path, "resumable")
    completed = [r for r in st.runs.values() if r.status == "completed"]
    assert sorted(r.case for r in completed) == sorted(st.cases)  # each case exactly once
    assert all(r.status is not None for r in st.runs.values())  # no run left open
    finals = {}
    for e in envs:
        if e.event.TYPE == "metrics_recorded" and e.event.step is None:
            finals[e.event.run] = finals.get(e.event.run, 0) + 1
    assert all(finals.get(r.run) == 1 for r in completed)
    assert set(finals) <= {r.run for r in completed}  # killed runs never left finals
    interrupted = sum(r.status == "interrupted" for r in st.runs.values())
    print(f"kills={killed} runs={len(st.runs)} interrupted={interrupted}")
    assert killed >= 10, f"only {killed} kills landed"
    assert interrupted >= 1, "no kill landed inside a run: the test proved nothing"
    # every interrupted run says why, and was closed by a later start of the runner
    assert all(
        r.error.startswith("interrupted: process ")
        for r in st.runs.values()
        if r.status == "interrupted"
    )


@pytest.mark.slow
def test_sigterm_flushes_and_cancels(tmp_path):
    path = str(tmp_path / "t.ledger")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "runner.py"),
            "--ledger",
            path,
            "--cases",
            "1",
            "--steps",
            "100000",
            "--pause",
            "0.001",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(0.2)
        if os.path.exists(os.path.join(path, "data.mdb")):
            with Ledger(path, create=False) as ledger:
                if ledger.head.seq > 50:
                    break
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    st, envs = _state(path, "resumable")
    (run,) = st.runs.values()
    assert (run.status, run.error) == ("cancelled", "received SIGTERM")
    steps = [e.event.step for e in envs if e.event.TYPE == "metrics_recorded"]
    # everything logged before the signal was committed: steps are contiguous from 0,
    # and more than what the 0.05 s flush interval alone had committed when we looked
    assert steps == list(range(len(steps))) and len(steps) > 40
    assert envs[-1].event.TYPE == "run_finished"
