"""A runner training through an integration, killed with SIGKILL mid-training and
restarted: the killed run is closed as interrupted, the new attempt completes, and no
value is recorded twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch")
pytest.importorskip("keras")

from integration_helpers import events, runs  # noqa: E402

from ledger import Ledger, LedgerError  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
EPOCHS = 6

RUNNER = """
import os, sys, time
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
from ledger.integrations.keras import LedgerCallback

ledger, pause = sys.argv[1], float(sys.argv[2])

class Pause(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(pause)

keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
cb = LedgerCallback(ledger, "kill", case="mlp", recorder_options={"interval": 0.05})
model.fit(x, x.sum(1), epochs=EPOCHS, batch_size=16, verbose=0, callbacks=[cb, Pause()])
""".replace("EPOCHS", str(EPOCHS))


def _epochs_committed(path: str) -> int:
    try:
        led = Ledger(path, readonly=True)
    except LedgerError:  # the runner has not created it (all) yet
        return 0
    with led:
        return sum(
            1 for e in led.read() if e.event.TYPE == "metrics_recorded" and "loss" in e.event.values
        )


@pytest.mark.slow
def test_killed_and_restarted_runner_records_no_value_twice(tmp_path):
    path = str(tmp_path / "k.ledger")
    first = subprocess.Popen([sys.executable, "-c", RUNNER, path, "0.4"], cwd=ROOT)
    deadline = time.monotonic() + 120
    while _epochs_committed(path) < 2:
        assert first.poll() is None, "the runner ended before it was killed"
        assert time.monotonic() < deadline, "no epoch was committed in time"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL

    second = subprocess.run([sys.executable, "-c", RUNNER, path, "0"], cwd=ROOT, timeout=120)
    assert second.returncode == 0

    rows = runs(path, "kill")
    assert [(r["run"], r["status"]) for r in rows] == [
        ("mlp#1", "interrupted"),
        ("mlp#2", "completed"),
    ]
    seen: Counter[tuple[str, str, int | None]] = Counter()
    for env in events(path):
        ev = env.event
        if ev.TYPE == "metrics_recorded":
            for name in ev.values:
                seen[(ev.run, name, ev.step)] += 1
    assert seen and max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
    done = sorted(s for r, m, s in seen if r == "mlp#2" and m == "loss")
    assert done == list(range(EPOCHS))
    killed = sorted(s for r, m, s in seen if r == "mlp#1" and m == "loss")
    assert 2 <= len(killed) < EPOCHS and killed == list(range(len(killed)))
    with Ledger(path, readonly=True) as led:
        assert led.verify().ok
