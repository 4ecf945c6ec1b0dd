"""The Query over hand-built ledgers: filters, stages, globs, params, time travel, and
the runs it leaves out (with their reasons)."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from ledger import Ledger
from projections.analytics.query import (
    ParamFilter,
    Query,
    QueryError,
    parse_param_filter,
)
from projections.base import AsOfError, UnknownStudy


class Events:
    """A study's events as wire dicts, in order."""

    def __init__(self, study: str) -> None:
        self.study = study
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, **fields: Any) -> Events:
        ev = {"type": type_, "study": self.study}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(ev)
        return self

    def run(self, case, run, finals=None, status="completed", error=None, **kw) -> Events:
        self.add("run_started", case=case, run=run, **kw)
        if finals:
            self.add("metrics_recorded", run=run, values=finals)
        if status is not None:
            self.add("run_finished", run=run, status=status, error=error)
        return self


def chip_events() -> Events:
    """base -> s1-up (upsize) -> s2-up (upsize); base -> s1-buf (buffer) -> s2-dead."""
    e = Events("chip")
    e.add("study_created", objectives=[{"metric": "wns", "direction": "max"}])
    e.add("case_created", case="base", params={"util": 0.5, "lib": "a"})
    e.add("eco_applied", case="s1-up", parent="base", eco="upsize", eco_class="sizing",
          params={"util": 0.6, "lib": "a"})  # fmt: skip
    e.add("eco_applied", case="s1-buf", parent="base", eco="buffer", eco_class="buffering",
          params={"util": 0.7, "lib": "b"})  # fmt: skip
    e.add("eco_applied", case="s2-up", parent="s1-up", eco="upsize", eco_class="sizing",
          params={"util": 0.8, "lib": "b"})  # fmt: skip
    e.add("eco_applied", case="s2-dead", parent="s1-buf", eco="vt_swap", eco_class="sizing",
          params={"util": 0.9})  # fmt: skip
    e.run("base", "b1", {"wns": -10.0, "area": 5.0}, seed=1, host="h1")
    e.run("base", "b2", {"wns": -12.0, "area": 6.0}, seed=2, host="h1")
    e.run("base", "b3", {"wns": -11.0}, seed=3, host="h2")
    e.run("s1-up", "u1", {"wns": -5.0}, seed=1, host="h1")
    e.run("s1-up", "u2", {"wns": -6.0}, seed=2, host="h2")
    e.run("s1-up", "u3", {"wns": -4.0}, seed=3, host="h2")
    e.run("s1-buf", "f1", {"wns": -15.0}, seed=1, host="h1")
    e.run("s1-buf", "f2", {"wns": -14.0}, seed=2, host="h1")
    e.run("s1-buf", "f3", {"wns": 100.0}, seed=3, host="h3")
    e.add("run_invalidated", run="f3", reason="bad host")
    e.run("s2-up", "v1", {"wns": -1.0}, seed=1, host="h1")
    e.run("s2-up", "v2", {"wns": -3.0}, seed=2, host="h2")
    e.run("s2-up", "v3", status="failed", error="segfault", seed=3, host="h3")
    e.run("s2-dead", "d1", status="failed", error="OOM at 0x7f3a in /tmp/r1/a.py:12", seed=1,
          host="h3")  # fmt: skip
    e.run("s2-dead", "d2", status="failed", error="OOM at 0x9b00 in /tmp/r7/a.py:40", seed=2,
          host="h3")  # fmt: skip
    e.run("s2-dead", "d3", status="timeout", error="wall time limit 3600 s", seed=3, host="h1")
    return e


@pytest.fixture
def chip(tmp_path):
    with Ledger(str(tmp_path / "chip.ledger")) as led:
        led.append(chip_events().events)
        yield led


def col(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


# ------------------------------------------------------------------------------- rows


def test_one_row_per_run_sorted_with_case_columns(chip):
    t = Query(chip).study("chip").metric("wns").table()
    assert col(t, "run") == [
        "b1", "b2", "b3", "f1", "f2", "u1", "u2", "u3", "d1", "d2", "d3", "v1", "v2", "v3",
    ]  # fmt: skip
    assert col(t, "case")[:4] == ["base", "base", "base", "s1-buf"]
    assert t.column_names[:12] == [
        "case", "run", "stage", "eco", "eco_class", "status", "seed", "host", "attempt",
        "error", "started_seq", "finished_seq",
    ]  # fmt: skip
    assert t.column_names[12:] == ["param.lib", "param.util", "wns"]
    row = {k: v[5] for k, v in t.to_pydict().items()}  # u1
    assert row["stage"] == 1 and row["eco"] == "upsize" and row["eco_class"] == "sizing"
    assert row["param.util"] == 0.6 and row["param.lib"] == "a" and row["wns"] == -5.0
    assert row["seed"] == 1 and row["host"] == "h1" and row["status"] == "completed"
    # a run with no final value holds null, not NaN; a case without the param holds null
    d1 = {k: v[8] for k, v in t.to_pydict().items()}
    assert d1["wns"] is None and d1["param.lib"] is None and d1["error"].startswith("OOM")
    assert t.schema.field("seed").type == pa.int64()
    assert t.schema.field("wns").type == pa.float64()


def test_invalidated_run_left_out_with_reason(chip):
    frame = Query(chip).study("chip").metric("wns").collect()
    assert "f3" not in frame.columns["run"].tolist()
    (ex,) = frame.exclusions
    assert (ex.case, ex.run) == ("s1-buf", "f3")
    assert ex.reason.startswith("invalidated at seq ") and ex.reason.endswith(": bad host")


def test_status_filter_records_each_run_left_out(chip):
    frame = Query(chip).study("chip").runs(status="completed").collect()
    assert set(frame.columns["status"].tolist()) == {"completed"}
    reasons = {e.run: e.reason for e in frame.exclusions}
    assert reasons["v3"] == "status failed, not completed"
    assert reasons["d3"] == "status timeout, not completed"
    assert reasons["f3"].endswith("bad host")
    both = Query(chip).study("chip").runs(status=["failed", "timeout"]).collect()
    assert both.columns["run"].tolist() == ["d1", "d2", "d3", "v3"]
    assert {e.reason for e in both.exclusions if e.run == "b1"} == {
        "status completed, not failed or timeout"
    }


def test_host_filter_is_part_of_the_population(chip):
    frame = Query(chip).study("chip").runs(host="h2").collect()
    assert frame.columns["run"].tolist() == ["b3", "u2", "u3", "v2"]
    assert frame.exclusions == ()


# ---------------------------------------------------------------------------- filters


def test_stage_glob_eco_and_params(chip):
    q = Query(chip).study("chip")
    assert set(col(q.stage(1).table(), "case")) == {"s1-up", "s1-buf"}
    assert set(col(q.stage(0, 2).table(), "case")) == {"base", "s2-up", "s2-dead"}
    assert set(col(q.cases("s1-*").table(), "case")) == {"s1-up", "s1-buf"}
    assert set(col(q.cases("*-up", "base").table(), "case")) == {"base", "s1-up", "s2-up"}
    assert set(col(q.cases("s?-up").table(), "case")) == {"s1-up", "s2-up"}
    assert set(col(q.eco("upsize").table(), "case")) == {"s1-up", "s2-up"}
    assert set(col(q.eco_class("sizing").table(), "case")) == {"s1-up", "s2-up", "s2-dead"}
    assert set(col(q.where_param("util", ">", 0.6).table(), "case")) == {
        "s1-buf", "s2-up", "s2-dead",
    }  # fmt: skip
    assert set(col(q.where_param("util", ">=", 0.6).where_param("util", "<", 0.8).table(), "case")) == {
        "s1-up", "s1-buf",
    }  # fmt: skip
    # a case without the param never matches, even with !=
    assert set(col(q.where_param("lib", "!=", "a").table(), "case")) == {"s1-buf", "s2-up"}
    assert set(col(q.where_param("lib", "in", ["a"]).table(), "case")) == {"base", "s1-up"}
    assert set(col(q.where_param("lib", "not in", ["a"]).table(), "case")) == {"s1-buf", "s2-up"}
    # filters combine (and)
    assert set(col(q.stage(1).cases("s1-*").where_param("lib", "==", "b").table(), "case")) == {
        "s1-buf"
    }
    # a string compared with a number matches nothing
    assert q.where_param("lib", ">", 1).table().num_rows == 0


def test_frame_lists_the_chosen_cases(chip):
    frame = Query(chip).study("chip").stage(2).collect()
    assert frame.cases == ("s2-dead", "s2-up")
    assert frame.params == ("lib", "util")
    assert frame.study == "chip" and frame.as_of == chip.head.seq


def test_query_is_immutable_and_reads_back(chip):
    base = Query(chip).study("chip")
    narrow = base.stage(1).cases("s1-*").runs(status="completed").metric("wns", agg="mean")
    narrow = narrow.where_param("util", ">", 0.6).as_of(30)
    assert base.spec.stages == () and base.spec.metrics == ()
    assert repr(narrow) == (
        "Query(ledger).study('chip').stage(1).cases('s1-*').runs(status='completed')"
        ".metric('wns', agg='mean').where_param('util', '>', 0.6).as_of(30)"
    )
    d = narrow.to_dict()
    assert d["params"] == ["util > 0.6"] and d["as_of"] == 30 and d["stages"] == [1]
    # the same metric again replaces the first
    assert [m.agg for m in narrow.metric("wns", agg="median").spec.metrics] == ["median"]


# ------------------------------------------------------------------------- per case


def test_per_case_aggregates(chip):
    q = Query(chip).study("chip").runs(status="completed")
    mean = q.metric("wns", agg="mean").collect()
    t = mean.table
    assert mean.per_case
    assert t.column_names == [
        "case", "stage", "eco", "eco_class", "runs", "param.lib", "param.util", "wns",
    ]  # fmt: skip
    got = dict(zip(col(t, "case"), col(t, "wns")))
    assert got == {"base": -11.0, "s1-buf": -14.5, "s1-up": -5.0, "s2-up": -2.0}
    assert dict(zip(col(t, "case"), col(t, "runs"))) == {
        "base": 3, "s1-buf": 2, "s1-up": 3, "s2-up": 2,
    }  # fmt: skip
    # a case with no run left is listed, with what became of its runs
    no_run = [e for e in mean.exclusions if e.run is None]
    assert [(e.case, e.reason) for e in no_run] == [
        ("s2-dead", "no run selected (2 failed, 1 timeout)")
    ]
    best = dict(zip(*(col(q.metric("wns", agg="best").table(), k) for k in ("case", "wns"))))
    assert best == {"base": -10.0, "s1-buf": -14.0, "s1-up": -4.0, "s2-up": -1.0}
    med = dict(zip(*(col(q.metric("wns", agg="median").table(), k) for k in ("case", "wns"))))
    assert med["base"] == -11.0 and med["s2-up"] == -2.0
    last = dict(zip(*(col(q.metric("wns", agg="last").table(), k) for k in ("case", "wns"))))
    assert last == {"base": -11.0, "s1-buf": -14.0, "s1-up": -4.0, "s2-up": -3.0}
    # a metric only some runs have: aggregated over those
    area = q.cases("base").metric("area", agg="mean").table()
    assert col(area, "area") == [5.5] and col(area, "runs") == [3]


def test_best_needs_a_direction_unless_objective(chip):
    q = Query(chip).study("chip")
    with pytest.raises(QueryError) as err:
        q.metric("area", agg="best").table()
    assert str(err.value) == (
        "agg 'best' of 'area' needs a direction: it is not an objective of study 'chip'; "
        "pass direction='min' or 'max'"
    )
    t = q.runs(status="completed").cases("base").metric("area", agg="best", direction="min").table()
    assert col(t, "area") == [5.0]


def test_mixed_aggs_refused(chip):
    with pytest.raises(QueryError, match="give an agg to every metric of the query or to none"):
        Query(chip).study("chip").metric("wns", agg="mean").metric("area").table()


# ------------------------------------------------------------------------ time travel


def test_as_of_time_travel(tmp_path):
    e = Events("t")
    e.add("study_created")
    e.add("case_created", case="a", params={"k": 1})
    e.run("a", "r1", {"m": 1.0})
    e.run("a", "r2", {"m": 2.0})
    with Ledger(str(tmp_path / "t.ledger")) as led:
        led.append(e.events)
        mark = led.head.seq
        led.append(
            [
                {"type": "run_invalidated", "study": "t", "run": "r2", "reason": "bug"},
                {"type": "case_created", "study": "t", "case": "b"},
                {"type": "run_started", "study": "t", "case": "b", "run": "r3"},
                {"type": "metrics_recorded", "study": "t", "run": "r3", "values": {"m": 3.0}},
                {"type": "metrics_recorded", "study": "t", "run": "r3", "values": {"m": 4.0}},
            ]
        )
        q = Query(led).study("t").metric("m")
        then = q.as_of(mark).collect()
        assert then.columns["run"].tolist() == ["r1", "r2"]
        assert then.exclusions == () and then.as_of == mark
        assert col(then.table, "m") == [1.0, 2.0]
        now = q.collect()
        assert now.columns["run"].tolist() == ["r1", "r3"]
        assert col(now.table, "m") == [1.0, 4.0]  # the later final supersedes
        assert now.columns["status"].tolist() == ["completed", None]  # r3 still running
        assert [e.run for e in now.exclusions] == ["r2"]
        # a case created after the as-of seq does not exist then
        with pytest.raises(QueryError, match=r"no case of study 't' at seq \d+ matches 'b'"):
            q.cases("b").as_of(mark).collect()
        with pytest.raises(AsOfError):
            q.as_of(led.head.seq + 1).collect()


# ---------------------------------------------------------------------------- errors


def test_unknown_things_are_errors_that_list_what_exists(chip):
    q = Query(chip).study("chip")
    seq = chip.head.seq
    with pytest.raises(UnknownStudy, match="unknown study 'nope'; known studies: chip"):
        Query(chip).study("nope").table()
    with pytest.raises(QueryError) as err:
        q.stage(7).table()
    assert str(err.value) == f"study 'chip' at seq {seq} has no case in stage 7 (stages: 0, 1, 2)"
    with pytest.raises(QueryError) as err:
        q.cases("s9-*").table()
    assert str(err.value) == (
        f"no case of study 'chip' at seq {seq} matches 's9-*' "
        "(cases: base, s1-buf, s1-up, s2-dead, s2-up)"
    )
    with pytest.raises(QueryError) as err:
        q.where_param("utl", ">", 1).table()
    assert str(err.value) == (
        f"no case of study 'chip' at seq {seq} sets the param 'utl' (params: lib, util)"
    )
    with pytest.raises(QueryError) as err:
        q.metric("wnss").table()
    assert str(err.value) == f"study 'chip' has no metric 'wnss' at seq {seq} (metrics: area, wns)"
    with pytest.raises(QueryError, match="has no ECO 'resize' "):
        q.eco("resize").table()
    with pytest.raises(QueryError, match="unknown operator '=~'"):
        q.where_param("util", "=~", 1)
    with pytest.raises(QueryError, match="unknown run status 'done'"):
        q.runs(status="done")
    with pytest.raises(QueryError, match="unknown aggregate 'max'"):
        q.metric("wns", agg="max")
    with pytest.raises(QueryError, match="a stage is a whole number >= 0"):
        q.stage(-1)


def test_no_study_given_uses_the_only_one(chip):
    assert Query(chip).collect().study == "chip"


# ------------------------------------------------------------------------- columns


def test_param_of_mixed_kinds_becomes_text_and_objects_json(tmp_path):
    e = Events("p")
    e.add("study_created")
    e.add("case_created", case="a", params={"x": 1, "cfg": {"b": 2, "a": [1, 2]}, "flag": True})
    e.add("case_created", case="b", params={"x": "wide", "flag": False})
    e.run("a", "r1", {"case": 1.0})
    e.run("b", "r2", {"case": 2.0})
    with Ledger(str(tmp_path / "p.ledger")) as led:
        led.append(e.events)
        t = Query(led).metric("case").table()
    assert col(t, "param.x") == ["1", "wide"]
    assert col(t, "param.cfg") == ['{"a":[1,2],"b":2}', None]
    assert col(t, "param.flag") == [True, False]
    # a metric named like a column is written metric.<name>
    assert col(t, "metric.case") == [1.0, 2.0] and col(t, "case") == ["a", "b"]


def test_nan_stays_nan_missing_stays_null(tmp_path):
    e = Events("n")
    e.add("study_created")
    e.add("case_created", case="a")
    e.run("a", "r1", {"m": float("nan")})
    e.run("a", "r2", {"other": 1.0})
    with Ledger(str(tmp_path / "n.ledger")) as led:
        led.append(e.events)
        t = Query(led).metric("m").table()
    m = col(t, "m")
    assert math.isnan(m[0]) and m[1] is None


# ------------------------------------------------------------------------- parse_param_filter


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("util>0.6", ParamFilter("util", ">", 0.6)),
        ("util >= 1", ParamFilter("util", ">=", 1)),
        ("lib==nangate45", ParamFilter("lib", "==", "nangate45")),
        ('lib == "a b"', ParamFilter("lib", "==", "a b")),
        ("fast==true", ParamFilter("fast", "==", True)),
        ("x!=-2.5e3", ParamFilter("x", "!=", -2500.0)),
        ('flow in ["a", "b"]', ParamFilter("flow", "in", ["a", "b"])),
        ("n not in [1, 2]", ParamFilter("n", "not in", [1, 2])),
    ],
)
def test_parse_where(expr, want):
    assert parse_param_filter(expr) == want


@pytest.mark.parametrize("expr", ["util", "util>", ">1", "util=1"])
def test_parse_where_refuses(expr):
    with pytest.raises(QueryError) as err:
        parse_param_filter(expr)
    assert str(err.value) == (
        f"cannot read the param filter {expr!r}: write NAME OP VALUE with OP one of "
        "==, !=, >=, <=, >, <, in, not in (e.g. 'util>0.6', 'lib==nangate45')"
    )


def test_parse_where_in_needs_a_list():
    with pytest.raises(QueryError, match="after 'in' write a JSON list"):
        parse_param_filter("flow in a")
