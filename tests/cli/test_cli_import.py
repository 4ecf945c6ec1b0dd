"""`ledger import`: real tools' stores and real data through the CLI, then rank and export.

Every test drives the click app with CliRunner against a ledger in tmp_path and asserts
the exit code, stdout and stderr. Values are checked against the source itself (Optuna's
and MLflow's own clients, ``json.loads`` of the ORFS lines, the ``csv`` module).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import re
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BUNDLE = SHARED / "orfs" / "metadata-history.jsonl"
LLM_EVALS = SHARED / "llm-evals" / "runs.csv"
needs_bundle = pytest.mark.skipif(
    not BUNDLE.exists(), reason=f"the shared ORFS bundle is absent ({BUNDLE})"
)
needs_llm = pytest.mark.skipif(
    not LLM_EVALS.exists(), reason=f"the shared llm-evals table is absent ({LLM_EVALS})"
)
EXPORT_MISSING = importlib.util.find_spec("cli.commands.export") is None
SKIP_EXPORT = (
    "`ledger export` is not wired yet (cli/commands/export.py is missing): the "
    "import -> export step is skipped; import and rank are checked above"
)


def _runner(path: str):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--ledger", path, *args], input=input, catch_exceptions=False)

    invoke.path = path
    return invoke


@pytest.fixture
def run(tmp_path):
    return _runner(str(tmp_path / "i.ledger"))


def ok(r):
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return r


def events_of(run, study):
    r = ok(run("log", "--json", "--study", study))
    return [json.loads(line) for line in r.stdout.splitlines()]


def by_type(events, tag):
    return [e for e in events if e["type"] == tag]


def finals_and_steps(events):
    """run -> {metric: value} (final, later supersedes), run -> {metric: {step: value}}."""
    finals: dict = defaultdict(dict)
    steps: dict = defaultdict(lambda: defaultdict(dict))
    for e in by_type(events, "metrics_recorded"):
        for k, v in e["values"].items():
            if e.get("step") is None:
                finals[e["run"]][k] = v
            else:
                steps[e["run"]][k][e["step"]] = v
    return finals, steps


def export_metrics(run, study, out):
    """``ledger export --format csv`` and its metrics.csv rows."""
    ok(run("export", "--study", study, "--format", "csv", "--out", str(out)))
    found = sorted(Path(out).rglob("metrics.csv"))
    assert len(found) == 1, found
    with found[0].open(newline="") as fh:
        return list(csv.DictReader(fh))


# -- Optuna: a study written by Optuna itself -------------------------------------------

optuna = None


@pytest.fixture(scope="module")
def optuna_journal(tmp_path_factory):
    global optuna
    optuna = pytest.importorskip("optuna")
    from optuna.storages import JournalStorage

    mod = optuna.storages.journal
    backend = getattr(mod, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    path = tmp_path_factory.mktemp("optuna") / "journal.log"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = JournalStorage(backend(str(path)))
        study = optuna.create_study(
            study_name="tune",
            storage=storage,
            direction="minimize",
            sampler=optuna.samplers.RandomSampler(seed=7),
        )

        def objective(trial):
            x = trial.suggest_float("x", -10, 10)
            layers = trial.suggest_int("layers", 1, 4)
            act = trial.suggest_categorical("act", ["relu", "tanh"])
            for step in range(3):
                trial.report((x - 2) ** 2 + layers + step * 0.5, step)
            if trial.number == 3:
                raise optuna.TrialPruned()
            if trial.number == 4:
                raise RuntimeError("diverged")
            return (x - 2) ** 2 + layers + (0.0 if act == "relu" else 1.0)

        study.optimize(objective, n_trials=6, catch=(RuntimeError,))
    return path, study


def test_optuna_journal_import_rank_every_value(run, optuna_journal):
    path, study = optuna_journal
    r = ok(run("import", "optuna", str(path), "--study", "tune", "--json"))
    assert r.stderr == ""
    out = json.loads(r.stdout)
    assert out["dry_run"] is False and out["studies_existing"] == []
    n_events = out["summary"]["events"]
    assert out["appended"] == n_events and out["duplicates"] == 0
    assert [f["source"] for f in out["files"]] == [str(path)]

    trials = {f"trial-{t.number}": t for t in study.get_trials()}
    status = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}
    events = events_of(run, "tune")
    (created,) = by_type(events, "study_created")
    assert created["objectives"] == [{"metric": "value", "direction": "min"}]
    cases = {e["case"]: e for e in by_type(events, "case_created")}
    assert sorted(cases) == sorted(trials)
    finals, steps = finals_and_steps(events)
    finished = {e["run"]: e for e in by_type(events, "run_finished")}
    for name, t in trials.items():
        assert cases[name]["params"] == t.params
        assert steps[name]["value"] == dict(t.intermediate_values)
        assert finished[name]["status"] == status[t.state.name]
        if t.values:  # Optuna gives a pruned trial its last intermediate value
            assert finals[name] == {"value": t.value}
        else:
            assert name not in finals

    # ranked by the study's own objective (min), every score Optuna's value
    r = ok(run("rank", "--study", "tune", "--json"))
    ranking = json.loads(r.stdout)
    done = sorted((t.value, name) for name, t in trials.items() if t.state.name == "COMPLETE")
    assert [(row["score"], row["case"]) for row in ranking["ranking"]] == done
    assert [row["rank"] for row in ranking["ranking"]] == [1, 2, 3, 4]
    assert all(row["runs"] == 1 for row in ranking["ranking"])
    assert sorted(u["case"] for u in ranking["unranked"]) == ["trial-3", "trial-4"]

    # the same source again appends nothing
    r = ok(run("import", "optuna", str(path), "--study", "tune", "--json"))
    again = json.loads(r.stdout)
    assert again["appended"] == 0
    assert again["duplicates"] == n_events - 1  # the study_created of an existing study is dropped
    assert again["studies_existing"] == [{"study": "tune", "seq": 1, "not_recorded": {}}]


@pytest.mark.skipif(EXPORT_MISSING, reason=SKIP_EXPORT)
def test_optuna_import_then_export_every_value(run, optuna_journal, tmp_path):
    path, study = optuna_journal
    ok(run("import", "optuna", str(path), "--study", "tune"))
    rows = export_metrics(run, "tune", tmp_path / "out")
    got = {(r["run"], r["metric"], r["step"]): float(r["value"]) for r in rows}
    want = {}
    for t in study.get_trials():
        for step, v in t.intermediate_values.items():
            want[(f"trial-{t.number}", "value", str(step))] = v
        if t.values:
            want[(f"trial-{t.number}", "value", "")] = t.value
    assert got == want


def test_optuna_into_an_existing_study_keeps_its_settings(run, optuna_journal, tmp_path):
    path, _ = optuna_journal
    ev = {
        "type": "study_created",
        "study": "mine",
        "objectives": [{"metric": "value", "direction": "max"}],
    }
    ok(run("append", "-", input=json.dumps(ev) + "\n"))
    r = ok(run("import", "optuna", str(path), "--study", "tune", "--into", "mine"))
    assert r.stderr == (
        "warning: study 'mine' already exists (seq 1) and keeps its own settings; not "
        "recorded from the source: objectives [{'metric': 'value', 'direction': 'min'}], "
        "config {'source': 'optuna', 'optuna_study': 'tune', 'directions': ['MINIMIZE']}\n"
    )
    assert re.search(r"^/\S+journal\.log: appended \d+ events$", r.stdout, re.M)
    ranking = json.loads(ok(run("rank", "--study", "mine", "--json")).stdout)
    assert ranking["policy"]["keys"][0]["direction"] == "max"  # the study's own objective


def test_missing_optuna_store_is_one_error_line(run, tmp_path):
    r = run("import", "optuna", str(tmp_path / "nope.log"), "--study", "x")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (
        f"error: {tmp_path / 'nope.log'}: no such file; pass a journal file path or a storage "
        "URL (sqlite:///study.db)\n"
    )
    assert not Path(run.path).exists()  # nothing parsed, nothing created


# -- MLflow: runs logged by MLflow itself -------------------------------------------------

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory, new_mlflow_store):
    """Runs logged by MLflow into a copy of the session's migrated empty store."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlruns.db"
    uri = new_mlflow_store(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = MlflowClient(uri)
        exp = c.create_experiment("sweep", artifact_location=str(path.parent / "art"))
        ids = {}
        for i, lr in enumerate([0.1, 0.03, 0.01]):
            r = c.create_run(exp, run_name=f"lr{lr}", start_time=T0 + i * 100_000)
            rid = r.info.run_id
            ids[rid] = lr
            c.log_param(rid, "lr", lr)
            for step in range(4):
                c.log_metric(
                    rid,
                    "loss",
                    1.0 / (step + 1) + lr,
                    step=step,
                    timestamp=T0 + i * 100_000 + step * 1000,
                )
            c.log_metric(rid, "accuracy", 0.9 - lr, step=3, timestamp=T0 + i * 100_000 + 5000)
            c.set_terminated(rid, "FINISHED", end_time=T0 + i * 100_000 + 9000)
        child = c.create_run(
            exp,
            run_name="child",
            start_time=T0 + 500_000,
            tags={"mlflow.parentRunId": next(iter(ids))},
        )
        c.log_param(child.info.run_id, "lr", 0.2)
        c.log_metric(child.info.run_id, "loss", float("nan"), step=0, timestamp=T0 + 500_100)
        c.set_terminated(child.info.run_id, "FAILED", end_time=T0 + 501_000)
    return uri, ids, child.info.run_id, MlflowClient(uri)


def test_mlflow_sqlite_import_rank_every_value(run, mlflow_store):
    uri, ids, child, client = mlflow_store
    r = ok(run("import", "mlflow", uri, "--experiment", "sweep", "--study", "ml", "--json"))
    assert r.stderr == ""
    out = json.loads(r.stdout)
    s = out["summary"]
    assert (s["runs"], s["statuses"]) == (4, {"completed": 3, "failed": 1})
    assert out["appended"] == s["events"]

    events = events_of(run, "ml")
    cases = {e["case"]: e for e in by_type(events, "case_created")}
    assert sorted(cases) == sorted([*ids, child])
    assert cases[child]["parents"] == [next(iter(ids))] and cases[child]["stage"] == 1
    finals, steps = finals_and_steps(events)
    finished = {e["run"]: e["status"] for e in by_type(events, "run_finished")}
    for rid in [*ids, child]:
        mr = client.get_run(rid)
        assert cases[rid]["params"] == mr.data.params  # MLflow keeps params as text
        for key in mr.data.metrics:
            hist = {m.step: m.value for m in client.get_metric_history(rid, key)}
            got = steps[rid][key]
            assert got.keys() == hist.keys()
            for st, v in hist.items():
                assert got[st] == v or (got[st] == "NaN" and math.isnan(v))
    assert finished == {**{rid: "completed" for rid in ids}, child: "failed"}
    for rid, lr in ids.items():
        assert finals[rid] == {"accuracy": 0.9 - lr, "loss": 0.25 + lr}

    # rank by the final loss (not an objective: --direction needed), lowest lr first
    r = ok(run("rank", "--study", "ml", "--metric", "loss", "--direction", "min", "--json"))
    ranking = json.loads(r.stdout)
    want = sorted((0.25 + lr, rid) for rid, lr in ids.items())
    assert [(row["score"], row["case"]) for row in ranking["ranking"]] == want
    assert [u["case"] for u in ranking["unranked"]] == [child]

    r = ok(run("import", "mlflow", uri, "--experiment", "sweep", "--study", "ml"))
    assert f"{uri}: appended 0 events ({s['events'] - 1} duplicates skipped)\n" in r.stdout


@pytest.mark.skipif(EXPORT_MISSING, reason=SKIP_EXPORT)
def test_mlflow_import_then_export_every_value(run, mlflow_store, tmp_path):
    uri, ids, child, client = mlflow_store
    ok(run("import", "mlflow", uri, "--experiment", "sweep", "--study", "ml"))
    rows = export_metrics(run, "ml", tmp_path / "out")
    got = {(r["run"], r["metric"], r["step"]): float(r["value"]) for r in rows}
    for rid, lr in ids.items():
        assert got[(rid, "loss", "")] == 0.25 + lr
        assert got[(rid, "accuracy", "")] == 0.9 - lr
        for step in range(4):
            assert got[(rid, "loss", str(step))] == 1.0 / (step + 1) + lr


# -- ORFS: the shared bundle ---------------------------------------------------------------


def _bundle_lines():
    return [json.loads(line) for line in BUNDLE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def orfs_ledger(tmp_path_factory):
    """The whole bundle imported three ways into one ledger: as is (study orfs), asap7
    only (study orfs-asap7) and with timing normalised to ns (study orfs-ns)."""
    if not BUNDLE.exists():
        pytest.skip(f"the shared ORFS bundle is absent ({BUNDLE})")
    run = _runner(str(tmp_path_factory.mktemp("orfs") / "o.ledger"))
    whole = ok(run("import", "orfs", str(BUNDLE), "--json"))
    asap7 = ok(
        run("import", "orfs", str(BUNDLE), "--platform", "asap7", "--study", "orfs-asap7", "--json")
    )
    ns = ok(
        run("import", "orfs", str(BUNDLE), "--normalise-time", "ns", "--study", "orfs-ns", "--json")
    )
    return (
        run,
        json.loads(whole.stdout),
        json.loads(asap7.stdout),
        json.loads(ns.stdout),
        [whole, asap7, ns],
    )


@needs_bundle
def test_orfs_bundle_whole_counts(orfs_ledger):
    run, whole, _, _, results = orfs_ledger
    assert all(r.stderr == "" for r in results)
    s = whole["summary"]
    assert (s["records"], s["runs"], s["cases"]) == (494, 494, 10)
    assert (s["metric_values"], s["stepped_values"], s["durations_converted"]) == (
        93996,
        4039,
        5684,
    )
    assert s["skipped"] == {
        "N/A": 217,
        "NoLimit": 225,
        "list": 494,
        "numeric_string": 2,
        "percent": 896,
    }
    assert s["skipped_total"] == 1834
    assert whole["appended"] == s["events"] == 3513
    status = json.loads(ok(run("status", "--json")).stdout)
    orfs = next(x for x in status["studies"] if x["study"] == "orfs")
    assert (orfs["cases"], orfs["runs"], orfs["events"]) == (10, {"completed": 494}, 3513)


@needs_bundle
def test_orfs_one_run_against_its_source_line(orfs_ledger):
    run, *_ = orfs_ledger
    lines = _bundle_lines()
    rec = next(
        r
        for r in lines
        if r["platform"] == "asap7"
        and r["design"] == "jpeg"
        and "run__flow__platform__time_units" not in r["metrics"]
    )
    run_id = f"asap7/jpeg@{rec['commit']}"
    events = [e for e in events_of(run, "orfs") if e.get("run") == run_id]
    (started,) = by_type(events, "run_started")
    finals, steps = finals_and_steps(events)
    want_final, want_steps, want_config = {}, defaultdict(dict), {}
    for k, v in rec["metrics"].items():
        m = re.search(r"__iter:(\d+)$", k)
        if k.startswith("run__flow__"):
            want_config[k] = v
        elif type(v) in (int, float):
            if m:
                want_steps[k[: m.start()]][int(m.group(1))] = v
            else:
                want_final[k] = v
        elif isinstance(v, str) and re.fullmatch(r"(\d+:)?\d+:\d+(\.\d+)?", v):
            parts = [float(p) for p in v.split(":")]
            secs = parts[-1] + 60 * parts[-2] + (3600 * parts[0] if len(parts) == 3 else 0)
            want_final[k] = secs
        else:
            want_config[k] = v
    assert finals[run_id] == pytest.approx(want_final, rel=0, abs=1e-9)
    assert set(finals[run_id]) == set(want_final)
    assert {k: dict(v) for k, v in steps[run_id].items()} == dict(want_steps)
    for k, v in want_config.items():
        assert started["config"][k] == v
    assert started["config"]["commit"] == rec["commit"]
    from datetime import datetime, timezone

    utc = datetime.fromisoformat(rec["date"]).astimezone(timezone.utc)
    assert started["ts"] == utc.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@needs_bundle
def test_orfs_reimport_appends_nothing(orfs_ledger):
    run, whole, *_ = orfs_ledger
    r = ok(run("import", "orfs", str(BUNDLE)))
    assert r.stderr == ""
    assert f"{BUNDLE}: appended 0 events (3,512 duplicates skipped)\n" in r.stdout
    head = json.loads(ok(run("status", "--json")).stdout)["head_seq"]
    r = ok(run("import", "orfs", str(BUNDLE), "--platform", "asap7", "--study", "orfs-asap7"))
    assert "appended 0 events" in r.stdout
    assert json.loads(ok(run("status", "--json")).stdout)["head_seq"] == head


def _mean_by_case(lines, metric, convert=lambda rec, v: v):
    """case -> (mean of the runs that have the metric, how many they are): rank's ``runs``
    counts the completed runs aggregated (``rank --json``), not every run of the case."""
    acc = defaultdict(list)
    for rec in lines:
        case = f"{rec['platform']}/{rec['design']}"
        v = rec["metrics"].get(metric)
        if type(v) in (int, float):
            acc[case].append(convert(rec, v))
    return {c: (sum(vs) / len(vs), len(vs)) for c, vs in acc.items()}


@needs_bundle
def test_orfs_rank_within_a_platform(orfs_ledger):
    run, _, asap7, _, _ = orfs_ledger
    kept = asap7["summary"]["kept"]
    assert (kept["platforms"], kept["cases"], kept["runs"], kept["runs_left_out"]) == (
        ["asap7"],
        3,
        139,
        355,
    )
    r = ok(
        run(
            "rank",
            "--study",
            "orfs-asap7",
            "--metric",
            "finish__timing__setup__ws",
            "--direction",
            "max",
            "--json",
        )
    )
    ranking = json.loads(r.stdout)
    want = _mean_by_case(
        [x for x in _bundle_lines() if x["platform"] == "asap7"], "finish__timing__setup__ws"
    )
    got = {row["case"]: (row["score"], row["runs"]) for row in ranking["ranking"]}
    assert got.keys() == want.keys() == {"asap7/aes", "asap7/gcd", "asap7/jpeg"}
    for case, (mean, n) in want.items():
        assert got[case][0] == pytest.approx(mean, rel=1e-12)
        assert got[case][1] == n
    assert [row["case"] for row in ranking["ranking"]] == ["asap7/gcd", "asap7/jpeg", "asap7/aes"]


@needs_bundle
def test_orfs_rank_across_platforms_after_normalising(orfs_ledger):
    run, _, _, ns, _ = orfs_ledger
    tn = ns["summary"]["time_normalised"]
    assert (tn["to"], tn["suffix"]) == ("1ns", "__ns")
    assert tn["runs_unit_read"] + tn["runs_unit_assumed"] == 494
    lines = _bundle_lines()

    def to_ns(rec, v):
        unit = (
            rec["metrics"].get("run__flow__platform__time_units")
            or rec["metrics"].get("run__flow__platform__timing_units")
            or ("1ps" if rec["platform"] in ("asap7", "gf12") else "1ns")
        )
        return v / 1000 if unit == "1ps" else v

    want = _mean_by_case(lines, "finish__timing__setup__ws", to_ns)
    r = ok(
        run(
            "rank",
            "--study",
            "orfs-ns",
            "--metric",
            "finish__timing__setup__ws__ns",
            "--direction",
            "max",
            "--json",
        )
    )
    ranking = json.loads(r.stdout)
    got = {row["case"]: (row["score"], row["runs"]) for row in ranking["ranking"]}
    assert got.keys() == want.keys() and len(got) == 10
    for case, (mean, n) in want.items():
        assert got[case][0] == pytest.approx(mean, rel=1e-12), case
        assert got[case][1] == n
    order = [row["case"] for row in ranking["ranking"]]
    assert order[:3] == ["sky130hd/jpeg", "asap7/gcd", "asap7/jpeg"]  # gcd's 187 ps is 0.187 ns

    # the originals stay as recorded, and each run says which unit was assumed
    rec = next(
        x
        for x in lines
        if x["platform"] == "asap7"
        and "run__flow__platform__time_units" not in x["metrics"]
        and "finish__timing__setup__ws" in x["metrics"]
    )
    run_id = f"asap7/{rec['design']}@{rec['commit']}"
    events = [e for e in events_of(run, "orfs-ns") if e.get("run") == run_id]
    (started,) = by_type(events, "run_started")
    assert started["config"]["time_unit"] == {
        "unit": "1ps",
        "assumed": True,
        "note": "assumed 1ps: run__flow__platform__time_units missing; platform asap7 reports ps",
        "normalised_to": "1ns",
    }
    finals, _ = finals_and_steps(events)
    v = rec["metrics"]["finish__timing__setup__ws"]
    assert finals[run_id]["finish__timing__setup__ws"] == v
    assert finals[run_id]["finish__timing__setup__ws__ns"] == pytest.approx(v / 1000, rel=1e-15)


@needs_bundle
def test_orfs_dry_run_appends_nothing_and_creates_nothing(tmp_path):
    run = _runner(str(tmp_path / "dry.ledger"))
    r = ok(run("import", "orfs", str(BUNDLE), "--dry-run"))
    assert r.stderr == ""
    assert r.stdout.endswith(
        "dry run: would append 3,513 events in 1 batch (study_created 1, case_created 10, "
        "run_started 494, metrics_recorded 2,514, run_finished 494); nothing appended\n"
    )
    assert "skipped:             N/A=217 NoLimit=225 list=494 numeric_string=2 percent=896\n" in (
        r.stdout
    )
    assert not Path(run.path).exists()
    r = ok(run("import", "orfs", str(BUNDLE), "--dry-run", "--json"))
    plan = json.loads(r.stdout)["would_append"]
    assert plan == {
        "batches": 1,
        "events": 3513,
        "by_type": {
            "study_created": 1,
            "case_created": 10,
            "run_started": 494,
            "metrics_recorded": 2514,
            "run_finished": 494,
        },
        "by_study": {"orfs": 3513},
    }


@needs_bundle
def test_orfs_unknown_platform_and_bad_unit(run):
    r = run("import", "orfs", str(BUNDLE), "--platform", "gf12")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (
        f"error: {BUNDLE}: no record of platform 'gf12'; the source's platforms are: asap7, "
        "nangate45, sky130hd\n"
    )
    r = run("import", "orfs", str(BUNDLE), "--normalise-time", "parsec")
    assert r.exit_code == 2
    assert "Invalid value for --normalise-time: 'parsec' is not a time unit" in r.stderr


METRICS_A = {
    "run__flow__platform": "nangate45",
    "run__flow__design": "gcd",
    "finish__timing__setup__ws": 0.12,
    "detailedroute__route__wirelength": 1000,
    "detailedroute__route__drc_errors__iter:1": 5,
    "finish__power__total": "N/A",
}


def test_orfs_folder_one_append_per_file(run, tmp_path):
    folder = tmp_path / "flow"
    for i, sub in enumerate(["a", "b", "c"]):
        (folder / sub).mkdir(parents=True)
        m = dict(METRICS_A, detailedroute__route__wirelength=1000 + i)
        (folder / sub / "metadata-base-ok.json").write_text(json.dumps(m))
    r = ok(run("import", "orfs", str(folder), "--json"))
    out = json.loads(r.stdout)
    assert [f["source"] for f in out["files"]] == [
        str(folder / s / "metadata-base-ok.json") for s in "abc"
    ]
    # the study and the case go with the first file; each file then adds its own run
    assert [f["appended"] for f in out["files"]] == [2 + 4, 4, 4]
    s = out["summary"]
    assert (s["runs"], s["cases"], s["events"], s["skipped_total"]) == (3, 1, 14, 3)
    assert s["events_shared_across_files"] == 4
    r = ok(run("import", "orfs", str(folder), "--json"))
    assert json.loads(r.stdout)["appended"] == 0


def test_orfs_files_that_disagree_refuse_the_import(run, tmp_path):
    rec = {
        "platform": "nangate45",
        "design": "gcd",
        "commit": "c1",
        "date": "2022-01-01T00:00:00-07:00",
        "metrics": METRICS_A,
    }
    (tmp_path / "a.jsonl").write_text(json.dumps(rec) + "\n")
    other = dict(rec, metrics=dict(METRICS_A, finish__timing__setup__ws=0.5))
    (tmp_path / "b.jsonl").write_text(json.dumps(other) + "\n")
    r = run("import", "orfs", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (
        f"error: {tmp_path / 'b.jsonl'}: metrics_recorded of 'nangate45/gcd@c1' (id "
        f"'orfs:orfs:run:nangate45/gcd@c1:final') is also in {tmp_path / 'a.jsonl'} with "
        "other content; a run is keyed by platform, design and recording commit, so the two "
        "files disagree about one run\n"
    )
    assert not Path(run.path).exists()


def test_orfs_conflict_with_the_ledger_names_the_file_and_says_why(run, tmp_path):
    rec = {
        "platform": "nangate45",
        "design": "gcd",
        "commit": "c1",
        "date": "2022-01-01T00:00:00Z",
        "metrics": METRICS_A,
    }
    src = tmp_path / "h.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    ok(run("import", "orfs", str(src)))
    r = run("import", "orfs", str(src), "--normalise-time", "ns")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(
        f"error: {src} (event orfs:orfs:run:nangate45/gcd@c1:started): run_started: id "
        "'orfs:orfs:run:nangate45/gcd@c1:started' is already in the log (seq 3) with other "
        "content;"
    )
    assert r.stderr.endswith(
        f"; nothing of {src} was appended (the source changed since it was imported, or it "
        "was imported with other options such as --normalise-time; import it into another "
        "--study to keep both)\n"
    )


# -- CSV edge cases --------------------------------------------------------------------------

EDGE = (
    "run,model,acc,loss,notes\n"
    'r1,"gpt, large",0.5,1.25,"said ""hi""\nthen left"\n'
    "r2,small,,2.5,\n"
    "r3,small,0.7,0.25,x\n"
)


def test_csv_quoted_fields_empty_cells_and_unknown_columns(run, tmp_path):
    f = tmp_path / "edge.csv"
    f.write_text(EDGE)
    r = run(
        "import",
        "csv",
        str(f),
        "--run",
        "run",
        "--case",
        "model",
        "--metric",
        "acc",
        "--metric",
        "loss",
    )
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (
        f"error: {f}: 1 column(s) not mapped to a role: notes; map each with --metric, "
        "--param, --config, --json-column or --ignore, or set --unmapped auto|config|ignore\n"
    )
    assert not Path(run.path).exists()

    r = ok(
        run(
            "import",
            "csv",
            str(f),
            "--run",
            "run",
            "--case",
            "model",
            "--metric",
            "acc",
            "--metric",
            "loss",
            "--unmapped",
            "config",
            "--json",
        )
    )
    assert r.stderr == ""
    s = json.loads(r.stdout)["summary"]
    assert (s["runs"], s["cases"], s["metric_values"]) == (3, 2, 5)
    assert s["empty_cells"] == {"acc": 1, "notes": 1}
    assert s["columns"] == {
        "run": "run",
        "model": "case",
        "acc": "metric",
        "loss": "metric",
        "notes": "config",
    }
    events = events_of(run, "edge")
    cases = {e["case"]: e["params"] for e in by_type(events, "case_created")}
    assert cases == {"gpt, large": {"model": "gpt, large"}, "small": {"model": "small"}}
    started = {e["run"]: e for e in by_type(events, "run_started")}
    assert started["r1"]["config"] == {"notes": 'said "hi"\nthen left'}
    assert "config" not in started["r2"]  # an empty cell is skipped, not an empty string
    finals, _ = finals_and_steps(events)
    assert finals == {
        "r1": {"acc": 0.5, "loss": 1.25},
        "r2": {"loss": 2.5},
        "r3": {"acc": 0.7, "loss": 0.25},
    }


def test_csv_bad_number_names_file_line_and_appends_nothing(run, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("run,acc\nr0,0.1\n")
    ok(run("import", "csv", str(good), "--run", "run", "--metric", "acc", "--study", "s"))
    head = json.loads(ok(run("status", "--json")).stdout)["head_seq"]
    f = tmp_path / "bad.csv"
    # the quoted newline makes the bad record start on line 5, not on the 4th record
    f.write_text(EDGE.replace("r3,small,0.7,0.25,x", "r3,small,0.7,abc,x"))
    r = run(
        "import",
        "csv",
        str(f),
        "--run",
        "run",
        "--case",
        "model",
        "--metric",
        "acc",
        "--metric",
        "loss",
        "--unmapped",
        "config",
        "--study",
        "s",
    )
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == f"error: {f}:5: column 'loss': 'abc' is not a number\n"
    assert json.loads(ok(run("status", "--json")).stdout)["head_seq"] == head


def test_csv_reimport_appends_nothing_and_long_files(run, tmp_path):
    f = tmp_path / "long.csv"
    f.write_text(
        "run,metric,step,value\nr1,loss,0,1.5\nr1,loss,1,1.0\nr1,acc,,0.8\n"
        "r2,acc,,0.9\nr1,loss,1,0.9\n"
    )
    r = ok(run("import", "csv", str(f), "--long", "--study", "L", "--json"))
    out = json.loads(r.stdout)
    assert out["summary"]["superseded"] == 1
    assert out["appended"] == out["summary"]["events"]
    events = events_of(run, "L")
    finals, steps = finals_and_steps(events)
    assert finals == {"r1": {"acc": 0.8}, "r2": {"acc": 0.9}}
    assert steps["r1"]["loss"] == {0: 1.5, 1: 0.9}
    r = ok(run("import", "csv", str(f), "--long", "--study", "L"))
    assert f"{f}: appended 0 events ({out['summary']['events'] - 1} duplicates skipped)\n" in (
        r.stdout
    )


def test_csv_flags_of_the_other_form_are_usage_errors(run, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("run,metric,value\n")
    r = run("import", "csv", str(f), "--long", "--metric", "acc")
    assert r.exit_code == 2
    assert r.stderr.endswith(
        "Error: --metric applies to wide files only; a long file names its columns with "
        "--run, --metric-column, --step, --value-column and --case\n"
    )
    r = run("import", "csv", str(f), "--value-column", "v")
    assert r.exit_code == 2
    assert r.stderr.endswith("Error: --value-column applies to long files only (pass --long)\n")


def test_csv_missing_file(run, tmp_path):
    r = run("import", "csv", str(tmp_path / "nope.csv"))
    assert r.exit_code == 1
    assert r.stderr == f"error: {tmp_path / 'nope.csv'}: cannot read: No such file or directory\n"


def test_csv_secrets_are_redacted_unless_kept(run, tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("run,acc,api_key\nr1,0.5,sk-abcdefghijklmnopqrstuvwxyz0123456789\n")
    r = ok(run("import", "csv", str(f), "--run", "run", "--metric", "acc", "--config", "api_key"))
    assert r.stderr == f"redacted {f} (event csv:s:run:r1:started): config.api_key\n"
    (started,) = by_type(events_of(run, "s"), "run_started")
    assert started["config"] == {"api_key": "[redacted]"}


# -- the llm-evals table: the one documented command line, both modes ----------------------

LLM_ARGS = [
    "--study-column", "experiment_id",
    "--case", "approach_name", "--case", "provider", "--case", "model",
    "--run", "id", "--step", "sample_index",
    "--metric", "is_correct", "--metric", "execution_time_ms",
    "--metric", "cost_estimate", "--metric", "parsing_confidence",
    "--json-column", "metadata_json",
    "--error-column", "metadata_json", "--error-key", "error",
    "--time-column", "created_at", "--unmapped", "config",
]  # fmt: skip


def _llm_rows():
    with LLM_EVALS.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@needs_llm
def test_llm_evals_each_sample_a_run(run):
    r = ok(run("import", "csv", str(LLM_EVALS), *LLM_ARGS, "--sample-as", "run", "--json"))
    assert r.stderr == ""
    s = json.loads(r.stdout)["summary"]
    assert s["studies"] == ["exp_bbh_0302", "exp_gsm_0305"]
    assert (s["cases"], s["runs"], s["metric_values"], s["stepped_values"]) == (24, 720, 2863, 0)
    assert s["empty_cells"]["parsing_confidence"] == 17
    assert s["statuses"] == {"completed": 719, "timeout": 1}

    rows = _llm_rows()
    timeout = next(x for x in rows if "timeout" in x["metadata_json"])
    events = events_of(run, timeout["experiment_id"])
    finished = {e["run"]: e for e in by_type(events, "run_finished")}
    assert finished[timeout["id"]]["status"] == "timeout"
    assert finished[timeout["id"]]["error"] == "timeout after 60s"
    finals, _ = finals_and_steps(events)
    sample = next(
        x
        for x in rows
        if x["experiment_id"] == timeout["experiment_id"] and x["parsing_confidence"]
    )
    assert finals[sample["id"]] == {
        "is_correct": int(sample["is_correct"]),
        "execution_time_ms": int(sample["execution_time_ms"]),
        "cost_estimate": float(sample["cost_estimate"]),
        "parsing_confidence": float(sample["parsing_confidence"]),
    }
    (started,) = [e for e in by_type(events, "run_started") if e["run"] == sample["id"]]
    assert started["case"] == "/".join(
        (sample["approach_name"], sample["provider"], sample["model"])
    )
    assert started["config"]["input_text"] == sample["input_text"]
    assert started["config"]["metadata_json"] == json.loads(sample["metadata_json"])

    # accuracy by case: the ranking's means are the table's own
    r = ok(
        run(
            "rank",
            "--study",
            "exp_gsm_0305",
            "--metric",
            "is_correct",
            "--direction",
            "max",
            "--json",
        )
    )
    acc = defaultdict(list)
    for x in rows:
        if x["experiment_id"] == "exp_gsm_0305":
            acc[f"{x['approach_name']}/{x['provider']}/{x['model']}"].append(int(x["is_correct"]))
    got = {row["case"]: (row["score"], row["runs"]) for row in json.loads(r.stdout)["ranking"]}
    assert got == {c: (pytest.approx(sum(v) / len(v)), len(v)) for c, v in acc.items()}


@needs_llm
def test_llm_evals_each_sample_a_step(run):
    r = ok(run("import", "csv", str(LLM_EVALS), *LLM_ARGS, "--sample-as", "step", "--json"))
    assert r.stderr == ""
    s = json.loads(r.stdout)["summary"]
    assert (s["cases"], s["runs"], s["metric_values"], s["stepped_values"]) == (24, 24, 0, 2863)
    assert s["statuses"] == {"completed": 24}
    rows = _llm_rows()
    x = rows[0]
    case = f"{x['approach_name']}/{x['provider']}/{x['model']}"
    events = events_of(run, x["experiment_id"])
    _, steps = finals_and_steps(events)
    want = {
        int(y["sample_index"]): float(y["execution_time_ms"])
        for y in rows
        if y["experiment_id"] == x["experiment_id"]
        and f"{y['approach_name']}/{y['provider']}/{y['model']}" == case
    }
    assert steps[case]["execution_time_ms"] == want and len(want) == 30
    r = ok(run("import", "csv", str(LLM_EVALS), *LLM_ARGS, "--sample-as", "step"))
    assert f"{LLM_EVALS}: appended 0 events (" in r.stdout


# -- progress, help ---------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal():
    from cli.progress import StderrProgress

    tty = _Tty()
    p = StderrProgress("reading x.csv", "rows", stream=tty)
    p(8192, None)
    p(50, 200)
    p.close()
    assert tty.getvalue() == (
        "\rreading x.csv: 8,192 rows\x1b[K"
        "\rreading x.csv [######                  ]  25% 50/200 rows\x1b[K"
        "\r\x1b[K"
    )
    pipe = io.StringIO()
    q = StderrProgress("reading x.csv", "rows", stream=pipe)
    q(10, 20)
    q.status("appending")
    q.close()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("sub", ["csv", "orfs", "mlflow", "optuna"])
def test_every_import_help_ends_with_an_example(sub):
    r = CliRunner().invoke(cli, ["import", sub, "--help"])
    assert r.exit_code == 0
    text = r.stdout.rstrip()
    tail = text[text.rindex("Example:") :]
    assert f"ledger import {sub} " in tail
    options = text[text.index("Options:") :]
    for flag in ("--dry-run", "--json", "--keep-secrets"):
        assert flag in options
    assert "--study" in options


def test_dry_run_against_an_existing_ledger(run, tmp_path):
    f = tmp_path / "long.csv"
    f.write_text("run,metric,step,value\nr1,acc,,0.8\n")
    ok(run("import", "csv", str(f), "--long", "--study", "L"))
    g = tmp_path / "more.csv"
    g.write_text("run,metric,step,value\nr2,acc,,0.9\n")
    r = ok(run("import", "csv", str(g), "--long", "--study", "L", "--dry-run", "--json"))
    out = json.loads(r.stdout)
    assert out["studies_existing"] == [{"study": "L", "seq": 1, "not_recorded": {}}]
    assert out["would_append"]["by_type"] == {
        "case_created": 1, "run_started": 1, "metrics_recorded": 1, "run_finished": 1
    }  # fmt: skip
    r = ok(run("import", "csv", str(g), "--long", "--study", "L", "--dry-run"))
    assert r.stdout.endswith(
        "dry run: would append 4 events in 1 batch (case_created 1, run_started 1, "
        "metrics_recorded 1, run_finished 1); nothing appended\n"
        "study L exists (seq 1): its settings are kept\n"
    )
    assert json.loads(ok(run("status", "--json")).stdout)["head_seq"] == 5
