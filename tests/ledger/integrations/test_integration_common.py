"""What every integration shares, without any framework."""

from __future__ import annotations

import math
import subprocess
import sys
from argparse import Namespace
from enum import Enum
from pathlib import Path

import numpy as np
from integration_helpers import events, runs

from ledger.integrations._common import Session, default_case, metric_values, plain

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_integrations_package_loads_no_framework():
    code = (
        "import sys, ledger, ledger.integrations\n"
        "heavy = {'torch', 'lightning', 'transformers', 'keras', 'optuna', 'numpy', "
        "'pyarrow', 'duckdb'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


class Color(Enum):
    RED = 1


def test_plain_turns_framework_values_into_data():
    value = {
        "lr": np.float32(0.5),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "path": Path("/tmp/x"),
        "color": Color.RED,
        "ns": Namespace(a=1, b=[np.float64(2.5)]),
        "tags": {"b", "a"},
        "arr": np.arange(3),
        1: "int key",
    }
    out = plain(value)
    assert out == {
        "lr": 0.5,
        "n": 3,
        "ok": True,
        "path": "/tmp/x",
        "color": "Color.RED",
        "ns": {"a": 1, "b": [2.5]},
        "tags": ["a", "b"],
        "arr": "[0 1 2]",
        "1": "int key",
    }
    assert type(out["n"]) is int and type(out["ok"]) is bool


def test_metric_values_keep_numbers_only():
    logs = {"loss": np.float32(0.25), "step": np.int64(4), "acc": 0.5, "name": "x",
            "flag": True, "vec": np.ones(2), "none": None, "nan": float("nan")}  # fmt: skip
    out = metric_values(logs)
    assert set(out) == {"loss", "step", "acc", "nan"}
    assert out["loss"] == 0.25 and out["step"] == 4 and math.isnan(out["nan"])


def test_default_case_follows_the_params():
    a = default_case({"lr": 0.1, "layers": 2})
    assert a == default_case({"layers": 2, "lr": 0.1}) and a.startswith("hp-") and len(a) == 15
    assert a != default_case({"lr": 0.2, "layers": 2})


def test_a_session_records_once_per_step_and_resumes_killed_runs(ledger_dir):
    s = Session(ledger_dir, "study", framework="test")
    s.log({"loss": 1.0, "epoch": 0}, 0)
    s.log({"eval_loss": 2.0, "epoch": 0}, 0)  # epoch again at the same step: not re-sent
    s.log({"loss": 0.5}, 1)
    s.close("completed")
    metrics = [e.event for e in events(ledger_dir) if e.event.TYPE == "metrics_recorded"]
    assert [m.values for m in metrics] == [{"loss": 1.0, "epoch": 0}, {"eval_loss": 2.0},
                                           {"loss": 0.5}]  # fmt: skip
    assert s.recorder is None  # closed; the next value opens it again, as a new run
    s.log({"loss": 0.25}, 0)
    s.close("completed")
    assert [r["status"] for r in runs(ledger_dir, "study")] == ["completed", "completed"]
    assert [r["attempt"] for r in runs(ledger_dir, "study")] == [1, 2]


def test_a_run_still_open_at_exit_is_finished(ledger_dir, tmp_path):
    code = (
        "from ledger.integrations._common import Session\n"
        f"s = Session({ledger_dir!r}, 'study', 'c', framework='test')\n"
        "s.log({'loss': 1.0}, 0)\n"
        "raise RuntimeError('boom')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and "boom" in out.stderr
    code = code.replace("raise RuntimeError('boom')\n", "")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    rows = runs(ledger_dir, "study")
    assert [(r["status"], r["error"]) for r in rows] == [
        ("failed", "RuntimeError: boom"),
        ("cancelled", "the process exited before training ended"),
    ]
