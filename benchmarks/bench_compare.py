"""``compare.py`` at a tiny size, so the comparison script never rots (it runs under
``make bench-smoke``, without MLflow, and ``make bench``; the real table comes from
running the script itself, see its docstring). Checks the table's shape and that every system's
"latest value per run and metric" agrees with the ledger's."""

from __future__ import annotations

import json

import compare
from conftest import SMOKE


def test_compare_runs_and_agrees(benchmark, tmp_path, capsys):
    """Once; the benchmark fixture keeps it in ``make bench`` (``--benchmark-only``)."""
    benchmark.group = "compare.py (tiny, a smoke run)"
    out = tmp_path / "compare.json"
    args = ["--size", "2000", "--peer-size", "1000", "--rounds", "1", "--peer-rounds", "1"]
    if SMOKE:  # MLflow's schema migrations alone take 10+ s: only the full run has it
        args += ["--skip", "mlflow log_batch"]
    argv = [*args, "--json", str(out), "--workdir", str(tmp_path / "w")]
    assert benchmark.pedantic(compare.main, args=(argv,), rounds=1, iterations=1) == 0
    info = json.loads(out.read_text())
    systems = {row["system"] for row in info["rows"]}
    assert {
        "ledger",
        "sqlite event log",
        "sqlite event log + unique id",
        "sqlite runs/metrics",
    } <= systems
    for row in info["rows"]:
        assert row["append_values_per_s"] > 0 and row["replay_values_per_s"] > 0
        assert row["latest_agrees"] in ("ok", "-"), row
    printed = capsys.readouterr().out
    assert "| system | values | append |" in printed
    assert info["machine"]["nproc"] >= 1 and info["load_average_before"]
