"""CSV importer: edge cases of the format, column roles, errors with file:line, llm-evals."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from ledger.codec import event_from_obj
from ledger.importers.common import ImportSourceError
from ledger.importers.csv_import import read_csv_long, read_csv_wide, status_from_error

LLM = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "llm-evals" / "runs.csv"

# the one documented command line, as keyword arguments (each maps 1:1 to a flag)
LLM_ARGS = dict(
    study_column="experiment_id",
    case=["approach_name", "provider", "model"],
    run="id",
    step="sample_index",
    metrics=["is_correct", "execution_time_ms", "cost_estimate", "parsing_confidence"],
    json_columns=["metadata_json"],
    error_column="metadata_json",
    error_key="error",
    time_column="created_at",
    unmapped="config",
)


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def by_type(events, kind):
    return [e for e in events if e["type"] == kind]


def valid(events):
    for ev in events:
        event_from_obj(dict(ev))
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)


# -- wide: format edge cases ------------------------------------------------------

QUOTED = (
    "run,lr,loss,note\n"
    'r1,0.1,0.5,"plain, with a comma"\n'
    'r2,0.2,0.25,"said ""hi""\nand a second line"\n'
    "\n"
    "r3,0.3,,\n"
    "r4,0.4,abc,x\n"
)


def test_quoted_fields_and_bad_number_on_the_right_line(tmp_path):
    path = write(tmp_path, QUOTED)
    with pytest.raises(ImportSourceError) as err:
        read_csv_wide(path, run="run", params=["lr"], metrics=["loss"], config=["note"])
    # r4 starts on physical line 7: the quoted newline of r2 and the blank line count
    assert str(err.value) == f"{path}:7: column 'loss': 'abc' is not a number"
    assert err.value.where == f"{path}:7" and err.value.field == "loss"


def test_quoted_fields_are_kept_verbatim(tmp_path):
    path = write(tmp_path, QUOTED.replace("r4,0.4,abc,x\n", ""))
    res = read_csv_wide(path, run="run", params=["lr"], metrics=["loss"], config=["note"])
    valid(res.events)
    starts = {e["run"]: e for e in by_type(res.events, "run_started")}
    assert starts["r1"]["config"] == {"note": "plain, with a comma"}
    assert starts["r2"]["config"] == {"note": 'said "hi"\nand a second line'}
    assert "config" not in starts["r3"]  # the empty note is skipped, not ""
    finals = {e["run"]: e["values"] for e in by_type(res.events, "metrics_recorded")}
    assert finals == {"r1": {"loss": 0.5}, "r2": {"loss": 0.25}}  # r3's empty loss skipped
    cases = {e["case"]: e.get("params") for e in by_type(res.events, "case_created")}
    assert cases == {"r1": {"lr": 0.1}, "r2": {"lr": 0.2}, "r3": {"lr": 0.3}}
    assert res.summary["empty_cells"] == {"loss": 1, "note": 1}
    assert res.summary["empty_cells_total"] == 2
    assert res.summary["runs"] == 3 and res.summary["studies"] == ["t"]
    assert [e["status"] for e in by_type(res.events, "run_finished")] == ["completed"] * 3


def test_unmapped_columns_are_an_error_that_lists_them(tmp_path):
    path = write(tmp_path, "run,loss,host,gpu_mem\nr1,0.5,a,12\n")
    with pytest.raises(ImportSourceError) as err:
        read_csv_wide(path, run="run", metrics=["loss"])
    assert str(err.value) == (
        f"{path}: 2 column(s) not mapped to a role: host, gpu_mem; map each with --metric, "
        "--param, --config, --json-column or --ignore, or set --unmapped auto|config|ignore"
    )
    res = read_csv_wide(path, run="run", metrics=["loss"], unmapped="config")
    assert by_type(res.events, "run_started")[0]["config"] == {"host": "a", "gpu_mem": "12"}
    assert res.summary["columns"] == {
        "run": "run",
        "loss": "metric",
        "host": "config",
        "gpu_mem": "config",
    }
    res = read_csv_wide(path, run="run", metrics=["loss"], unmapped="ignore")
    assert "config" not in by_type(res.events, "run_started")[0]
    res = read_csv_wide(path, run="run", unmapped="auto")
    assert by_type(res.events, "metrics_recorded")[0]["values"] == {"loss": 0.5, "gpu_mem": 12}
    assert by_type(res.events, "run_started")[0]["config"] == {"host": "a"}


def test_options_naming_missing_columns_and_double_roles(tmp_path):
    path = write(tmp_path, "run,loss\nr1,0.5\n")
    with pytest.raises(ImportSourceError) as err:
        read_csv_wide(path, run="id", metrics=["loss"])
    assert str(err.value) == f"{path}: --run 'id' is not a column; the columns are: run, loss"
    with pytest.raises(ImportSourceError, match=r"--metric 'acc\*' matches no column"):
        read_csv_wide(path, run="run", metrics=["acc*"])
    with pytest.raises(
        ImportSourceError, match=r"column 'loss': mapped twice: as metric and as config"
    ):
        read_csv_wide(path, run="run", metrics=["loss"], config=["loss"])


def test_globs_and_ints_floats_nan(tmp_path):
    path = write(
        tmp_path, "run,val_acc,val_loss,train_loss,seed\nr1,1,nan,-inf,7\nr2,0.5,1e-3,2,8\n"
    )
    res = read_csv_wide(path, run="run", metrics=["val_*", "train_loss"], params=["seed"])
    vals = {e["run"]: e["values"] for e in by_type(res.events, "metrics_recorded")}
    assert vals["r1"]["val_acc"] == 1 and type(vals["r1"]["val_acc"]) is int
    assert math.isnan(vals["r1"]["val_loss"]) and vals["r1"]["train_loss"] == -math.inf
    assert vals["r2"] == {"val_acc": 0.5, "val_loss": 0.001, "train_loss": 2}
    assert {e["case"]: e["params"] for e in by_type(res.events, "case_created")} == {
        "r1": {"seed": 7},
        "r2": {"seed": 8},
    }


@pytest.mark.parametrize("cell", ["true", "1_000", " 1", "0x10", "1,5"])
def test_things_that_are_not_numbers(tmp_path, cell):
    path = write(tmp_path, f'run,loss\nr1,"{cell}"\n')
    with pytest.raises(ImportSourceError, match=rf":2: column 'loss': {cell!r} is not a number"):
        read_csv_wide(path, run="run", metrics=["loss"])


def test_ragged_row_duplicate_run_and_header_errors(tmp_path):
    path = write(tmp_path, "run,loss\nr1,0.5\nr2,0.5,9\n")
    with pytest.raises(ImportSourceError, match=r"t.csv:3: 3 fields, the header has 2"):
        read_csv_wide(path, run="run", metrics=["loss"])
    path = write(tmp_path, "run,loss\nr1,0.5\nr1,0.6\n")
    with pytest.raises(ImportSourceError) as err:
        read_csv_wide(path, run="run", metrics=["loss"])
    assert str(err.value) == (
        f"{path}:3: column 'run': run 'r1' appears again (first at line 2); run ids are "
        "unique within a study"
    )
    path = write(tmp_path, "run,loss,loss\nr1,0.5,1\n")
    with pytest.raises(ImportSourceError, match=r":1: column 'loss': appears twice in the header"):
        read_csv_wide(path, run="run", metrics=["loss"])
    path = write(tmp_path, "")
    with pytest.raises(ImportSourceError, match="the file is empty"):
        read_csv_wide(path)


def test_cases_params_stage_status_and_default_run_ids(tmp_path):
    text = (
        "model,size,stage,lr,status,acc\n"
        "m,small,0,0.1,ok,0.7\n"
        "m,small,0,0.1,FAILED,\n"
        "m,large,1,0.2,Timed-Out,0.1\n"
    )
    path = write(tmp_path, text)
    res = read_csv_wide(
        path,
        study="s",
        case=["model", "size"],
        stage="stage",
        params=["lr"],
        status="status",
        metrics=["acc"],
    )
    valid(res.events)
    cases = by_type(res.events, "case_created")
    assert [(c["case"], c.get("stage", 0), c["params"]) for c in cases] == [
        ("m/small", 0, {"model": "m", "size": "small", "lr": 0.1}),
        ("m/large", 1, {"model": "m", "size": "large", "lr": 0.2}),
    ]
    starts = by_type(res.events, "run_started")
    assert [(s["run"], s["case"]) for s in starts] == [
        ("row1", "m/small"),
        ("row2", "m/small"),
        ("row3", "m/large"),
    ]
    assert [f["status"] for f in by_type(res.events, "run_finished")] == [
        "completed",
        "failed",
        "timeout",
    ]
    assert res.summary["statuses"] == {"completed": 1, "failed": 1, "timeout": 1}

    bad = write(tmp_path, text.replace("m,small,0,0.1,FAILED", "m,small,0,0.3,FAILED"))
    with pytest.raises(ImportSourceError) as err:
        read_csv_wide(
            bad,
            case=["model", "size"],
            stage="stage",
            params=["lr"],
            status="status",
            metrics=["acc"],
        )
    assert str(err.value) == (
        f"{bad}:3: case 'm/small' has params {{'model': 'm', 'size': 'small', 'lr': 0.3}} here "
        "but {'model': 'm', 'size': 'small', 'lr': 0.1} at line 2; a case's params cannot "
        "differ between its rows"
    )
    bad = write(tmp_path, text.replace("Timed-Out", "weird"))
    with pytest.raises(
        ImportSourceError, match=r":4: column 'status': 'weird' is not a known status"
    ):
        read_csv_wide(
            bad,
            case=["model", "size"],
            stage="stage",
            params=["lr"],
            status="status",
            metrics=["acc"],
        )
    bad = write(tmp_path, text.replace("m,large,1", "m,large,-1"))
    with pytest.raises(ImportSourceError, match=r":4: column 'stage': '-1' is not a stage"):
        read_csv_wide(
            bad,
            case=["model", "size"],
            stage="stage",
            params=["lr"],
            status="status",
            metrics=["acc"],
        )


def test_error_column_and_times(tmp_path):
    text = (
        "run,err,at,acc\n"
        "a,,2026-03-02 09:00:37,1\n"
        "b,request timed out,2026-03-02T10:00:00+01:00,0\n"
        "c,CUDA OOM,2026-03-02 09:00:39.5,0\n"
    )
    path = write(tmp_path, text)
    res = read_csv_wide(
        path,
        run="run",
        error_column="err",
        config=["err"],
        time_column="at",
        metrics=["acc"],
        naive_tz="Europe/Paris",
    )
    fins = {f["run"]: f for f in by_type(res.events, "run_finished")}
    assert fins["a"]["status"] == "completed" and "error" not in fins["a"]
    assert (fins["b"]["status"], fins["b"]["error"]) == ("timeout", "request timed out")
    assert (fins["c"]["status"], fins["c"]["error"]) == ("failed", "CUDA OOM")
    starts = {s["run"]: s for s in by_type(res.events, "run_started")}
    assert starts["a"]["ts"] == "2026-03-02T08:00:37Z"  # Paris is UTC+1 in March
    assert starts["b"]["ts"] == "2026-03-02T09:00:00Z"
    assert starts["c"]["ts"] == "2026-03-02T08:00:39.500000Z"
    assert starts["a"]["config"]["at"] == "2026-03-02T08:00:37Z"
    assert res.summary["times_without_offset"] == {"count": 2, "assumed_zone": "Europe/Paris"}
    bad = write(tmp_path, text.replace("2026-03-02 09:00:39.5", "tuesday"))
    with pytest.raises(ImportSourceError, match=r":4: column 'at': 'tuesday' is not an ISO 8601"):
        read_csv_wide(
            bad, run="run", error_column="err", config=["err"], time_column="at", metrics=["acc"]
        )


def test_status_from_error():
    assert status_from_error("timeout after 60s") == "timeout"
    assert status_from_error("Timed out") == "timeout"
    assert status_from_error("deadline exceeded") == "timeout"
    assert status_from_error("killed by user") == "cancelled"
    assert status_from_error("KeyboardInterrupt") == "interrupted"
    assert status_from_error("ValueError: x") == "failed"


def test_study_column_filter_and_ids_include_the_study(tmp_path):
    path = write(tmp_path, "exp,run,acc\ne1,r1,1\ne2,r1,0\n")
    res = read_csv_wide(path, study_column="exp", run="run", metrics=["acc"])
    assert res.summary["studies"] == ["e1", "e2"]
    assert [e["id"] for e in by_type(res.events, "run_finished")] == [
        "csv:e1:run:r1:finished",
        "csv:e2:run:r1:finished",
    ]
    only = read_csv_wide(path, study="e2", study_column="exp", run="run", metrics=["acc"])
    assert only.summary["studies"] == ["e2"] and only.summary["rows_of_other_studies"] == 1
    with pytest.raises(ImportSourceError, match="no row of study 'e3'; nothing to import"):
        read_csv_wide(path, study="e3", study_column="exp", run="run", metrics=["acc"])


def test_step_mode_groups_rows_into_one_run_per_case(tmp_path):
    text = "model,i,loss,note\nm1,0,1.0,a\nm1,1,0.5,a\nm2,0,2.0,b\nm2,1,,c\n"
    path = write(tmp_path, text)
    res = read_csv_wide(
        path, case=["model"], step="i", sample_as="step", metrics=["loss"], config=["note"]
    )
    valid(res.events)
    steps = [(e["run"], e["step"], e["values"]) for e in by_type(res.events, "metrics_recorded")]
    assert steps == [("m1", 0, {"loss": 1.0}), ("m1", 1, {"loss": 0.5}), ("m2", 0, {"loss": 2.0})]
    starts = {s["run"]: s["config"] for s in by_type(res.events, "run_started")}
    assert starts == {"m1": {"note": "a"}, "m2": {"note": {"0": "b", "1": "c"}}}
    assert res.summary["stepped_values"] == 3 and res.summary["runs"] == 2
    bad = write(tmp_path, text + "m1,1,0.4,a\n")
    with pytest.raises(
        ImportSourceError,
        match=r":6: column 'i': step 1 of run 'm1' appears again \(first at line 3\)",
    ):
        read_csv_wide(
            bad, case=["model"], step="i", sample_as="step", metrics=["loss"], config=["note"]
        )
    with pytest.raises(ImportSourceError, match="sample_as='step' needs the step column"):
        read_csv_wide(path, case=["model"], sample_as="step")


def test_reparse_is_identical_and_reappend_appends_nothing(tmp_path):
    path = write(tmp_path, QUOTED.replace("r4,0.4,abc,x\n", ""))
    kw = dict(run="run", params=["lr"], metrics=["loss"], config=["note"])
    first = read_csv_wide(path, **kw)
    assert read_csv_wide(path, **kw).events == first.events
    log = pytest.importorskip("ledger.log")
    with log.Ledger.open(tmp_path / "x.ledger") as led:
        a = led.append(first.events, source=str(path))
        b = led.append(read_csv_wide(path, **kw).events, source=str(path))
    assert a.appended == len(first.events) and b.appended == 0


# -- long -------------------------------------------------------------------------


def test_long_file(tmp_path):
    text = (
        "run,metric,step,value,case\n"
        "r1,loss,0,1.5,c1\n"
        "r1,loss,1,1.25,c1\n"
        "r1,acc,,0.9,c1\n"
        "r2,loss,0,,c1\n"
        "r2,loss,0,3,c1\n"
        "r2,loss,0,2.5,c1\n"
    )
    path = write(tmp_path, text)
    res = read_csv_long(path, case=["case"], study="s")
    valid(res.events)
    assert [(e["type"], e.get("case"), e.get("run")) for e in res.events[:2]] == [
        ("study_created", None, None),
        ("case_created", "c1", None),
    ]
    mets = [(e["run"], e.get("step"), e["values"]) for e in by_type(res.events, "metrics_recorded")]
    assert mets == [
        ("r1", 0, {"loss": 1.5}),
        ("r1", 1, {"loss": 1.25}),
        ("r1", None, {"acc": 0.9}),
        ("r2", 0, {"loss": 2.5}),
    ]
    s = res.summary
    assert (s["runs"], s["cases"], s["metric_values"], s["stepped_values"]) == (2, 1, 1, 3)
    assert (s["superseded"], s["empty_cells_total"]) == (1, 1)
    assert s["columns"] == {
        "run": "run",
        "metric": "metric",
        "step": "step",
        "value": "value",
        "case": "case",
    }
    bad = write(tmp_path, text + "r3,loss,2,oops,c2\n")
    with pytest.raises(ImportSourceError) as err:
        read_csv_long(bad, case=["case"])
    assert str(err.value) == f"{bad}:8: column 'value': 'oops' is not a number"
    bad = write(tmp_path, text + "r1,loss,2,1,c9\n")
    with pytest.raises(
        ImportSourceError, match=r":8: column 'case': run 'r1' belongs to case 'c1' at line 2"
    ):
        read_csv_long(bad, case=["case"])
    with pytest.raises(ImportSourceError, match=r"1 column\(s\) not mapped to a role: case"):
        read_csv_long(path)
    assert read_csv_long(path, ignore=["case"]).summary["cases"] == 2  # case = run id
    no_step = write(tmp_path, "run,metric,value\nr1,acc,1\n")
    assert by_type(read_csv_long(no_step, step=None).events, "metrics_recorded")[0] == {
        "type": "metrics_recorded",
        "study": "t",
        "run": "r1",
        "values": {"acc": 1},
        "id": "csv:t:run:r1:final",
    }
    assert (
        by_type(read_csv_long(no_step, step=None, finish_status=None).events, "run_finished") == []
    )


# -- the llm-evals table -----------------------------------------------------------


@pytest.fixture(scope="module")
def llm():
    if not LLM.is_file():
        pytest.skip(
            f"shared llm-evals data not found at {LLM} (../shared/data relative to the repo)"
        )
    return LLM


def test_llm_evals_sample_as_run(llm):
    res = read_csv_wide(llm, sample_as="run", **LLM_ARGS)
    valid(res.events)
    s = res.summary
    assert s["studies"] == ["exp_bbh_0302", "exp_gsm_0305"]
    assert (s["rows"], s["cases"], s["runs"]) == (720, 24, 720)
    assert s["metric_values"] == 4 * 720 - 17  # 17 empty parsing_confidence cells
    assert s["empty_cells"] == {
        "parsed_answer": 57,
        "parsing_confidence": 17,
        "parsing_method": 1,
        "raw_output": 22,
    }
    assert s["statuses"] == {"completed": 719, "timeout": 1}
    assert s["events"] == 2 + 24 + 3 * 720 == len(res.events)
    names = {k for e in by_type(res.events, "metrics_recorded") for k in e["values"]}
    assert names == {"is_correct", "execution_time_ms", "cost_estimate", "parsing_confidence"}
    case = by_type(res.events, "case_created")[0]
    assert case["case"] == "None/openrouter/gpt-oss-20b"
    assert case["params"] == {
        "approach_name": "None",
        "provider": "openrouter",
        "model": "gpt-oss-20b",
    }

    first = by_type(res.events, "run_started")[0]
    assert first["run"] == "exp_bbh_0302-None-gpt-oss-20b-000"
    assert first["ts"] == "2026-03-02T09:00:37Z"
    assert first["config"]["input_text"] == (
        "If a train leaves at 3pm and travels 120 km at 60 km/h, when does it arrive?"
    )
    assert first["config"]["metadata_json"] == {"temperature": 0.0, "max_tokens": 512}
    assert first["config"]["sample_index"] == 0
    vals = by_type(res.events, "metrics_recorded")[0]["values"]
    assert vals == {
        "parsing_confidence": 0.775,
        "is_correct": 1,
        "execution_time_ms": 883,
        "cost_estimate": 0.00132,
    }
    assert type(vals["is_correct"]) is int

    (timeout,) = [f for f in by_type(res.events, "run_finished") if f["status"] != "completed"]
    assert timeout == {
        "type": "run_finished",
        "study": "exp_bbh_0302",
        "run": "exp_bbh_0302-None-claude-haiku-007",
        "status": "timeout",
        "error": "timeout after 60s",
        "id": "csv:exp_bbh_0302:run:exp_bbh_0302-None-claude-haiku-007:finished",
        "ts": "2026-03-02T09:12:48Z",
    }


def test_llm_evals_sample_as_step(llm):
    res = read_csv_wide(llm, sample_as="step", **LLM_ARGS)
    valid(res.events)
    s = res.summary
    assert (s["cases"], s["runs"], s["metric_values"], s["stepped_values"]) == (24, 24, 0, 2863)
    assert s["statuses"] == {"completed": 24}
    assert s["events"] == 2 + 24 + 24 + 720 + 24 == len(res.events)
    steps = by_type(res.events, "metrics_recorded")
    per_run = Counter((e["study"], e["run"]) for e in steps)
    assert len(per_run) == 24 and set(per_run.values()) == {30}
    assert sorted({e["step"] for e in steps}) == list(range(30))
    run = "None/anthropic/claude-haiku"
    started = next(
        e
        for e in by_type(res.events, "run_started")
        if e["run"] == run and e["study"] == "exp_bbh_0302"
    )
    assert started["case"] == run
    assert started["ts"] == "2026-03-02T09:10:40Z"  # its earliest sample
    assert started["config"]["errors"] == {"7": "timeout after 60s"}
    assert started["config"]["id"]["7"] == "exp_bbh_0302-None-claude-haiku-007"
    assert started["config"]["expected_answer"]["0"] == "5pm"
    step7 = next(
        e for e in steps if e["run"] == run and e["study"] == "exp_bbh_0302" and e["step"] == 7
    )
    assert step7["values"] == {"is_correct": 1, "execution_time_ms": 1531, "cost_estimate": 0.01719}


def test_llm_evals_both_modes_append_cleanly(llm, tmp_path):
    log = pytest.importorskip("ledger.log")
    for mode in ("run", "step"):
        events = read_csv_wide(llm, sample_as=mode, **LLM_ARGS).events
        with log.Ledger.open(tmp_path / f"{mode}.ledger") as led:
            assert led.append(events, source=str(llm)).appended == len(events)
            again = led.append(read_csv_wide(llm, sample_as=mode, **LLM_ARGS).events)
            assert (again.appended, again.duplicates) == (0, len(events))


def test_long_text_cells_and_encoding_errors(tmp_path):
    import csv

    big = "x" * 300_000  # over the csv module's 128 KiB default field limit
    path = write(tmp_path, f'run,out,acc\nr1,"{big}",1\n')
    before = csv.field_size_limit()
    res = read_csv_wide(path, run="run", config=["out"], metrics=["acc"])
    assert by_type(res.events, "run_started")[0]["config"]["out"] == big
    assert csv.field_size_limit() == before  # the process-wide limit is restored
    latin = tmp_path / "latin.csv"
    latin.write_bytes("run,acc\nr\xe9,1\n".encode("latin-1"))
    with pytest.raises(ImportSourceError, match="not utf-8-sig text"):
        read_csv_wide(latin, run="run", metrics=["acc"])
    res = read_csv_wide(latin, run="run", metrics=["acc"], encoding="latin-1")
    assert by_type(res.events, "run_started")[0]["run"] == "ré"
