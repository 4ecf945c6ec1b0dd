"""ORFS METRICS2.1 importer: the real bundle parsed whole, identity, dates, strings, errors."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from ledger.codec import event_from_obj
from ledger.importers.common import ImportSourceError
from ledger.importers.orfs import parse_duration, read_orfs, value_kind

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "orfs"
BUNDLE = DATA / "metadata-history.jsonl"


@pytest.fixture(scope="module")
def bundle():
    if not BUNDLE.is_file():
        pytest.skip(f"shared ORFS data not found at {BUNDLE} (../shared/data relative to the repo)")
    return read_orfs([BUNDLE])


@pytest.fixture(scope="module")
def lines():
    if not BUNDLE.is_file():
        pytest.skip(f"shared ORFS data not found at {BUNDLE}")
    return BUNDLE.read_text().splitlines()


def _by_run(events):
    runs: dict[str, dict] = {}
    for ev in events:
        if "run" in ev:
            r = runs.setdefault(ev["run"], {"final": {}, "steps": {}, "started": None})
            if ev["type"] == "run_started":
                r["started"] = ev
            elif ev["type"] == "metrics_recorded" and "step" in ev:
                r["steps"][ev["step"]] = ev["values"]
            elif ev["type"] == "metrics_recorded":
                r["final"] = ev["values"]
            elif ev["type"] == "run_finished":
                r["finished"] = ev
    return runs


def test_bundle_counts(bundle):
    s = bundle.summary
    assert s["records"] == 494
    assert s["runs"] == 494
    assert s["cases"] == 10
    assert s["metric_values"] == 93996
    assert s["durations_converted"] == 5684
    assert s["stepped_values"] == 4039
    assert s["skipped"] == {
        "N/A": 217,
        "NoLimit": 225,
        "list": 494,
        "numeric_string": 2,
        "percent": 896,
    }
    assert s["skipped_total"] == 1834
    assert s["duplicate_records"] == 0
    assert s["dates_assumed_utc"] == 0
    types = Counter(e["type"] for e in bundle.events)
    assert types == {
        "study_created": 1,
        "case_created": 10,
        "run_started": 494,
        "run_finished": 494,
        "metrics_recorded": 494 + (s["events"] - 1 - 10 - 3 * 494),
    }
    assert s["events"] == len(bundle.events) == 3513


def test_runs_per_case_match_the_readme(bundle):
    per_case = Counter(e["case"] for e in bundle.events if e["type"] == "run_started")
    assert per_case == {
        "sky130hd/aes": 65,
        "sky130hd/jpeg": 61,
        "nangate45/gcd": 51,
        "asap7/aes": 50,
        "nangate45/jpeg": 47,
        "sky130hd/gcd": 47,
        "asap7/jpeg": 46,
        "nangate45/aes": 43,
        "asap7/gcd": 43,
        "sky130hd/riscv32i": 41,
    }
    case = next(e for e in bundle.events if e["type"] == "case_created")
    assert case["params"] == {
        "platform": case["case"].split("/")[0],
        "design": case["case"].split("/")[1],
    }


def test_every_event_is_valid_wire_form_with_an_explicit_id(bundle):
    ids = [e["id"] for e in bundle.events]
    assert len(set(ids)) == len(ids)
    for ev in bundle.events:
        event_from_obj(dict(ev))  # strict decoding: raises on any unknown or mistyped field
        if ev["type"] == "metrics_recorded":
            for v in ev["values"].values():
                assert type(v) in (int, float)


def test_one_run_against_its_source_line(bundle, lines):
    # line 27 of the bundle, checked by hand
    src = json.loads(lines[26])
    run_id = "nangate45/aes@cafc91885c1b0d7b9df29d86deaa8d122e274c03"
    run = _by_run(bundle.events)[run_id]
    started = run["started"]
    assert started["case"] == "nangate45/aes"
    assert started["ts"] == "2022-08-08T23:27:39Z"  # 16:27:39-07:00
    assert started["config"]["date"] == "2022-08-08T23:27:39Z"
    assert started["config"]["commit"] == "cafc91885c1b0d7b9df29d86deaa8d122e274c03"
    assert started["config"]["run__flow__openroad_version"] == "v2.0-4579-g893e149de"
    assert started["config"]["run__flow__platform__time_units"] == "1ns"
    assert started["config"]["run__flow__uuid"] == "4c43f727-8faa-4bb0-8ee5-1104f91b73d3"
    final = run["final"]
    assert final["finish__timing__setup__ws"] == -0.17
    assert final["finish__timing__setup__tns"] == -22.64
    assert final["detailedroute__route__wirelength"] == 331849
    assert final["synth__runtime__total"] == 94.5  # "1:34.50"
    assert final["total_time"] == pytest.approx(153.46)  # "0:02:33.460000"
    assert final["floorplan__runtime__total"] == pytest.approx(0.54)  # "0:00.54"
    assert [run["steps"][i]["detailedroute__route__drc_errors"] for i in (1, 2, 3, 4)] == [
        12242,
        523,
        416,
        9,
    ]
    assert run["finished"]["status"] == "completed"
    assert run["finished"]["ts"] == started["ts"]

    # and every value of the line landed somewhere, unchanged or converted
    for key, value in src["metrics"].items():
        if key.startswith("run__flow__"):
            assert started["config"][key] == value
        elif "__iter:" in key:
            name, step = key.rsplit("__iter:", 1)
            assert run["steps"][int(step)][name] == value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert final[key] == value and type(final[key]) is type(value)
        elif isinstance(value, str) and parse_duration(value) is not None:
            assert final[key] == parse_duration(value)
        else:
            assert started["config"][key] == value
            assert key not in final


def test_strings_are_never_numbers(bundle):
    first = _by_run(bundle.events)["nangate45/aes@cd991b8fc7272ff52411a3ce28768b35298a0732"]
    assert first["started"]["config"]["finish__power__total"] == "N/A"
    assert first["started"]["config"]["constraints__clocks__details"] == ["clk: 5.0000"]
    assert "finish__power__total" not in first["final"]
    assert first["final"]["total_time"] == 0.0  # "0:00:00"
    for r in _by_run(bundle.events).values():
        assert not any(isinstance(v, bool) for v in r["final"].values())
        for key, value in r["started"]["config"].items():
            if value in ("N/A", "NoLimit") or isinstance(value, list):
                assert key not in r["final"]


def test_sentinels_stay_numbers(bundle):
    big = [
        v
        for r in _by_run(bundle.events).values()
        for k, v in r["final"].items()
        if "max_fanout_limit" in k and abs(v) >= 1e29
    ]
    # 1e+30 as written, and 1e+30 that went through a float32 on the way
    assert Counter(big) == {1e30: 7 * 21, 1.0000000150474662e30: 7 * 48}


def test_duplicate_uuids_are_distinct_runs_keyed_by_commit(bundle, lines):
    records = [json.loads(line) for line in lines]
    uuids = Counter(r["metrics"].get("run__flow__uuid") for r in records)
    twice = {u for u, c in uuids.items() if c > 1}
    assert len(twice) == 26  # 23 twice, 3 three times
    differing = {
        u
        for u in twice
        if len(
            {
                json.dumps(r["metrics"], sort_keys=True)
                for r in records
                if r["metrics"]["run__flow__uuid"] == u
            }
        )
        > 1
    }
    assert len(differing) == 14
    metrics_seen = Counter(json.dumps(r["metrics"], sort_keys=True) for r in records)
    assert sum(c - 1 for c in metrics_seen.values()) == 15  # re-recorded unchanged results
    runs = _by_run(bundle.events)
    runs_with_dup_uuid = [
        rid for rid, r in runs.items() if r["started"]["config"].get("run__flow__uuid") in twice
    ]
    assert len(runs_with_dup_uuid) == 23 * 2 + 3 * 3
    for r in records:
        assert f"{r['platform']}/{r['design']}@{r['commit']}" in runs


def test_dates_in_utc(bundle, lines):
    starts = [e for e in bundle.events if e["type"] == "run_started"]
    assert all(e["ts"].endswith("Z") and "+" not in e["ts"] for e in starts)
    second = json.loads(lines[1])
    assert second["date"] == "2021-04-29T17:19:02-03:00"
    ev = next(e for e in starts if e["run"].endswith(second["commit"]))
    assert ev["ts"] == "2021-04-29T20:19:02Z"


def test_reimport_is_identical(bundle):
    again = read_orfs([BUNDLE])
    assert again.events == bundle.events
    assert again.summary == bundle.summary


def test_reappend_appends_nothing(bundle, tmp_path):
    ledger = pytest.importorskip("ledger.log")
    with ledger.Ledger.open(tmp_path / "x.ledger") as led:
        first = led.append(bundle.events, source=str(BUNDLE))
        assert first.appended == len(bundle.events)
        second = led.append(read_orfs([BUNDLE]).events, source=str(BUNDLE))
        assert second.appended == 0
        assert second.duplicates == len(bundle.events)
        assert second.head_seq == first.head_seq


def test_by_variant(bundle):
    res = read_orfs([BUNDLE], by_variant=True, study="orfs-variants")
    assert res.summary["cases"] == 21  # 10 base, 10 odb_0925, 1 stt
    cases = {e["case"]: e["params"] for e in res.events if e["type"] == "case_created"}
    assert cases["asap7/jpeg/stt"] == {"platform": "asap7", "design": "jpeg", "variant": "stt"}
    assert all(e["study"] == "orfs-variants" for e in res.events)


# -- small sources ------------------------------------------------------------------


def _metrics(**extra):
    base = {
        "run__flow__platform": "nangate45",
        "run__flow__design": "gcd",
        "finish__timing__setup__ws": 0.25,
        "detailedroute__route__drc_errors__iter:0": 7,
        "detailedroute__route__drc_errors__iter:1": 0,
        "synth__runtime__total": "1:02:03",
        "finish__power__total": "N/A",
        "placeopt__cpu__total": "95%",
        "cts__design__rows:unithd": 12,
    }
    base.update(extra)
    return base


def test_folder_recursive_sorted_and_bare_files(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deep" / "metadata-base-ok.json").write_text(json.dumps(_metrics()))
    (tmp_path / "a" / "metadata.json").write_text(
        json.dumps(_metrics(run__flow__design="aes", finish__timing__setup__ws=-1.5))
    )
    (tmp_path / "a" / "other.json").write_text("not even json")  # not metadata*.json: ignored
    res = read_orfs([tmp_path])
    assert res.summary["source"] == [
        str(tmp_path / "a" / "metadata.json"),
        str(tmp_path / "b" / "deep" / "metadata-base-ok.json"),
    ]
    starts = [e for e in res.events if e["type"] == "run_started"]
    assert [e["case"] for e in starts] == ["nangate45/aes", "nangate45/gcd"]
    assert starts[0]["run"].startswith("nangate45/aes@sha:")
    assert "ts" not in starts[0]  # a bare file has no recording date
    runs = _by_run(res.events)
    gcd = runs[starts[1]["run"]]
    assert gcd["final"] == {
        "finish__timing__setup__ws": 0.25,
        "synth__runtime__total": 3723.0,
        "cts__design__rows:unithd": 12,
    }
    assert gcd["steps"] == {
        0: {"detailedroute__route__drc_errors": 7},
        1: {"detailedroute__route__drc_errors": 0},
    }
    assert res.summary["skipped"] == {"N/A": 2, "percent": 2}
    assert read_orfs([tmp_path]).events == res.events


def test_identical_record_twice_is_counted_once_and_conflicts_are_refused(tmp_path):
    rec = {
        "platform": "asap7",
        "design": "gcd",
        "commit": "c1",
        "date": "2024-01-02T03:04:05+02:00",
    }
    path = tmp_path / "h.jsonl"
    path.write_text(
        json.dumps({**rec, "metrics": _metrics()})
        + "\n\n"
        + json.dumps({**rec, "metrics": _metrics()})
        + "\n"
    )
    res = read_orfs([path])
    assert res.summary["runs"] == 1
    assert res.summary["duplicate_records"] == 1
    assert _by_run(res.events)["asap7/gcd@c1"]["started"]["ts"] == "2024-01-02T01:04:05Z"

    path.write_text(
        json.dumps({**rec, "metrics": _metrics()})
        + "\n"
        + json.dumps({**rec, "metrics": _metrics(finish__timing__setup__ws=9.0)})
        + "\n"
    )
    with pytest.raises(ImportSourceError) as err:
        read_orfs([path])
    assert str(err.value) == (
        f"{path}:2: field 'commit': run 'asap7/gcd@c1' is also recorded at {path}:1 with "
        "different content; a run is keyed by platform, design and recording commit"
    )


def test_bad_line_names_file_and_line(tmp_path):
    rec = {"platform": "asap7", "design": "gcd", "commit": "c1", "date": "2024-01-02T03:04:05Z"}
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({**rec, "metrics": _metrics()}) + "\n{oops\n")
    with pytest.raises(ImportSourceError, match=rf"^{path}:2: invalid JSON: "):
        read_orfs([path])
    path.write_text(json.dumps({"platform": "asap7", "design": "gcd", "metrics": {}}) + "\n")
    with pytest.raises(ImportSourceError) as err:
        read_orfs([path])
    assert str(err.value) == (
        f"{path}:1: field 'commit': missing; the recording ORFS commit keys the run"
    )
    path.write_text(json.dumps({**rec, "date": "yesterday", "metrics": {}}) + "\n")
    with pytest.raises(
        ImportSourceError, match=r":1: field 'date': 'yesterday' is not an ISO 8601"
    ):
        read_orfs([path])
    bare = tmp_path / "metadata.json"
    bare.write_text(json.dumps({"finish__area": 1.0}))
    with pytest.raises(ImportSourceError, match=r"metadata.json:1: field 'run__flow__platform'"):
        read_orfs([bare])
    with pytest.raises(ImportSourceError, match="no such file or folder"):
        read_orfs([tmp_path / "nope"])


def test_parse_duration_and_kinds():
    assert parse_duration("0:20.02") == 20.02
    assert parse_duration("0:03:37.100000") == pytest.approx(217.1)
    assert parse_duration("1:02:03") == 3723
    assert parse_duration("12:05.50") == 725.5
    assert parse_duration("1:61:00") is None
    assert parse_duration("0:75") is None
    assert parse_duration("N/A") is None
    assert value_kind("N/A") == "N/A"
    assert value_kind("NoLimit") == "NoLimit"
    assert value_kind("95%") == "percent"
    assert value_kind("1ns") == "unit"
    assert value_kind("0") == "numeric_string"
    assert value_kind(["x"]) == "list"
    assert value_kind(True) == "bool"
    assert value_kind("hello world") == "text"


def test_progress_is_called(tmp_path):
    seen = []
    rec = {"platform": "p", "design": "d", "date": "2024-01-02T03:04:05Z", "metrics": {"a": 1}}
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps({**rec, "commit": f"c{i}"}) + "\n" for i in range(200)))
    read_orfs([path], progress=lambda done, total: seen.append(done))
    assert seen[-1] == 200 and seen == sorted(seen) and len(seen) >= 3
    assert not math.isnan(seen[0])
