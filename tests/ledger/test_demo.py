from __future__ import annotations

import json

from click.testing import CliRunner

from cli.commands.demo import by_ranking
from cli.main import cli
from ledger import Ledger
from ledger.demo import run_demo, spirals
from ledger.summary import fold_studies


def test_spirals_is_seeded():
    a, b = spirals(50, 3), spirals(50, 3)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    assert not (spirals(50, 4)[0] == a[0]).all()


def test_demo_records_a_three_stage_study(tmp_path):
    path = str(tmp_path / "d.ledger")
    summary = run_demo(path, seeds_per_case=1, choose=by_ranking)
    assert [s["stage"] for s in summary["stages"]] == [0, 1, 2]
    with Ledger(path, create=False) as ledger:
        assert ledger.verify().ok
        st = fold_studies(ledger.read())["spirals-mlp"]
        statuses = sorted({r.status for r in st.runs.values()})
        assert statuses == ["completed", "failed"]
        failed = [r for r in st.runs.values() if r.status == "failed"]
        assert all(r.error.startswith("FloatingPointError: training diverged") for r in failed)
        selections = [e.event for e in ledger.read(types=["selection_recorded"])]
        assert [s.stage for s in selections] == [0, 1, 2]
        assert [s.survivors for s in selections] == [s["survivors"] for s in summary["stages"]]
        # children derive from the survivors of the previous stage
        ecos = [e.event for e in ledger.read(types=["eco_applied"])]
        assert {e.parent for e in ecos if e.stage == 1} == set(selections[0].survivors)
        assert {e.parent for e in ecos if e.stage == 2} == set(selections[1].survivors)
        # per-epoch metrics are stepped, finals come last
        steps = [
            e.event.step
            for e in ledger.read(types=["metrics_recorded"])
            if e.event.run == failed[0].run
        ]
        assert steps and all(s is not None for s in steps)


def test_demo_command_shows_dag_rank_and_verify(tmp_path):
    r = CliRunner().invoke(
        cli, ["--ledger", str(tmp_path / "d.ledger"), "demo"], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    for marker in ("$ ledger dag", "$ ledger rank", "survivor", "$ ledger verify", "ok: "):
        assert marker in r.stdout
    status = CliRunner().invoke(cli, ["--ledger", str(tmp_path / "d.ledger"), "status", "--json"])
    assert json.loads(status.stdout)["studies"][0]["runs"]["failed"] == 2
