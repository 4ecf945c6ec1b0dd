from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

S = "chip"


def events() -> list[dict]:
    ev: list[dict] = [
        {
            "type": "study_created",
            "study": S,
            "objectives": [{"metric": "qor", "direction": "max"}],
        },
        {"type": "case_created", "study": S, "case": "base"},
        {
            "type": "eco_applied",
            "study": S,
            "case": "a",
            "parent": "base",
            "eco": "resize",
            "eco_class": "sizing",
        },
        {"type": "eco_applied", "study": S, "case": "b", "parent": "base", "eco": "buffer"},
        {"type": "case_created", "study": S, "case": "m", "parents": ["a", "b"], "stage": 2},
    ]  # seq 1-5
    for case, qor, drc in [("base", 1.0, 0), ("a", 3.0, 0), ("b", 3.0, 2), ("m", 2.0, 0)]:
        run = f"{case}-1"
        ev += [
            {"type": "run_started", "study": S, "case": case, "run": run},
            {
                "type": "metrics_recorded",
                "study": S,
                "run": run,
                "values": {"qor": qor, "drc": drc, "area": 10 - qor},
            },
            {"type": "run_finished", "study": S, "run": run, "status": "completed"},
        ]  # seq 6-17
    ev.append({"type": "study_created", "study": "other"})  # seq 18
    return ev


@pytest.fixture
def led(tmp_path) -> str:
    path = str(tmp_path / "c.ledger")
    with Ledger(path) as led:
        led.append(events())
    return path


def run(path: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", path, *args])


def test_dag_text(led) -> None:
    res = run(led, "dag", "--study", S)
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""
    assert res.stdout == (
        "study chip as of seq 18: 4 cases, stages 0-2\n"
        "base  [stage 0]\n"
        "├── a  [stage 1, eco resize (sizing)]\n"
        "│   └── m  [stage 2]  (parents: a, b)\n"
        "└── b  [stage 1, eco buffer]\n"
        "    └── m  (also a child of b; drawn under a)\n"
    )


def test_dag_json_shape_and_as_of(led) -> None:
    res = run(led, "dag", "--study", S, "--as-of", "3", "--json")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["as_of"] == 3
    assert [
        (n["case"], n["parents"], n["stage"], n["eco"], n["eco_class"]) for n in out["nodes"]
    ] == [
        ("base", [], 0, None, None),
        ("a", ["base"], 1, "resize", "sizing"),
    ]
    assert out["edges"] == [{"parent": "base", "child": "a", "eco": "resize"}]


def test_dag_dot_and_mermaid(led) -> None:
    dot = run(led, "dag", "-s", S, "--format", "dot")
    assert dot.exit_code == 0
    assert '  "base" -> "a" [label="resize"];' in dot.stdout.splitlines()
    mermaid = run(led, "dag", "-s", S, "--format", "mermaid")
    assert mermaid.stdout.splitlines()[0] == "graph TD"
    assert "  n0 -->|resize| n1" in mermaid.stdout.splitlines()


def test_rank_json_shape(led) -> None:
    res = run(led, "rank", "--study", S, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["study"] == S and out["stage"] is None and out["as_of"] == 18
    assert out["policy"]["keys"] == [{"metric": "qor", "direction": "max"}]
    # a and b tie on qor: case id breaks the tie
    assert [(r["rank"], r["case"], r["score"], r["runs"]) for r in out["ranking"]] == [
        (1, "a", 3.0, 1),
        (2, "b", 3.0, 1),
        (3, "m", 2.0, 1),
        (4, "base", 1.0, 1),
    ]
    assert out["unranked"] == []


def test_rank_require_top_by_stage(led) -> None:
    res = run(
        led,
        "rank",
        "-s",
        S,
        "--stage",
        "1",
        "--by",
        "qor:max,area:min",
        "--require",
        "drc==0",
        "--top",
        "1",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["stage"] == 1
    assert out["ranking"] == [
        {"rank": 1, "case": "a", "score": [3.0, 7.0], "runs": 1, "survivor": True, "stage": 1}
    ]
    assert out["unranked"] == [{"case": "b", "reason": "infeasible: drc==0 (mean 2)", "stage": 1}]
    assert out["policy"]["require"] == ["drc==0"]


def test_rank_pareto_text(led) -> None:
    res = run(led, "rank", "-s", S, "--by", "qor:max,drc:min", "--pareto", "--top", "2")
    assert res.exit_code == 0
    assert res.stdout.splitlines() == [
        "study chip, all stages, as of seq 18: qor:max,drc:min (mean) pareto top 2",
        "rank  case  stage  qor  drc  runs  front  survivor",
        "----  ----  -----  ---  ---  ----  -----  --------",
        "   1  a         1    3    0     1      1  yes",
        "   2  b         1    3    2     1      2  yes",
        "   3  m         2    2    0     1      2  no",
        "   4  base      0    1    0     1      3  no",
    ]


def test_rank_time_travel_lists_unranked_reasons(led) -> None:
    res = run(led, "rank", "-s", S, "--as-of", "10")
    assert res.exit_code == 0
    assert res.stdout == (
        "study chip, all stages, as of seq 10: qor:max (mean)\n"
        "rank  case  stage  qor  runs\n"
        "----  ----  -----  ---  ----\n"
        "   1  base      0    1     1\n"
        "\n"
        "unranked (3)\n"
        "case  stage  reason\n"
        "----  -----  ----------------------------\n"
        "a         1  no completed run (1 running)\n"
        "b         1  no completed run (no runs)\n"
        "m         2  no completed run (no runs)\n"
    )
    out = json.loads(run(led, "rank", "-s", S, "--as-of", "10", "--json").stdout)
    assert out["as_of"] == 10
    assert [r["case"] for r in out["ranking"]] == ["base"]
    assert out["unranked"] == [
        {"case": "a", "reason": "no completed run (1 running)", "stage": 1},
        {"case": "b", "reason": "no completed run (no runs)", "stage": 1},
        {"case": "m", "reason": "no completed run (no runs)", "stage": 2},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rank", "--study", "nope"], "error: unknown study 'nope'; known studies: chip, other\n"),
        (["rank"], "error: the ledger holds 2 studies (chip, other); pick one with --study\n"),
        (
            ["rank", "-s", S, "--metric", "area"],
            "error: metric 'area' is not an objective of the study (objectives: qor:max); "
            "pass --direction min or --direction max\n",
        ),
        (
            ["rank", "-s", "other"],
            "error: the study declares no objectives to rank by; pass --metric M --direction min|max, or --by m1:max,m2:min\n",
        ),
        (
            ["rank", "-s", S, "--require", "drc=0"],
            "error: cannot read the constraint 'drc=0': write METRIC OP NUMBER with OP one of "
            "==, !=, >=, <=, >, < and a decimal number (e.g. 'drc_errors==0', 'wns_ps>=0')\n",
        ),
        (
            ["rank", "-s", S, "--stage", "7"],
            "error: study 'chip' has no case in stage 7 at seq 18 (stages: 0, 1, 2)\n",
        ),
        (
            ["dag", "-s", S, "--as-of", "99"],
            "error: as-of seq 99 is outside the log (its head is seq 18); pick a seq from 0 to 18\n",
        ),
        (["dag", "-s", S, "--as-of", "17"], None),
        (
            ["dag", "-s", "other", "--as-of", "17"],
            "error: study 'other' did not exist yet at seq 17 (it was created at seq 18); pick a later --as-of\n",
        ),
    ],
)
def test_errors_say_what_and_how_to_fix(led, args, message) -> None:
    res = run(led, *args)
    if message is None:
        assert res.exit_code == 0
        return
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr == message


def test_usage_errors_exit_2(led) -> None:
    res = run(led, "rank", "-s", S, "--agg", "avg")
    assert res.exit_code == 2
    assert "Invalid value for '--agg'" in res.stderr


def test_missing_ledger_is_refused(tmp_path) -> None:
    res = run(str(tmp_path / "typo.ledger"), "rank")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ")
    assert not (tmp_path / "typo.ledger").exists()


def test_checkpoint_then_read_commands_use_it_and_never_write(led) -> None:
    res = run(led, "checkpoint", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["seq"] == 18
    assert [c["name"] for c in out["checkpoints"]] == ["dag", "runs", "metrics", "selections"]
    with Ledger(led, create=False) as ledger:
        before = ledger.aux_items("checkpoints")
    assert json.loads(run(led, "rank", "-s", S, "--json").stdout)["ranking"][0]["case"] == "a"
    assert run(led, "dag", "-s", S).exit_code == 0
    with Ledger(led, create=False) as ledger:
        assert ledger.aux_items("checkpoints") == before
    listed = run(led, "checkpoint", "--list")
    assert listed.exit_code == 0
    size = out["checkpoints"][0]["bytes"]
    assert listed.stdout.splitlines()[2].split() == ["dag", "18", "1", str(size), "ok"]


def test_a_stale_checkpoint_warns_on_stderr(led) -> None:
    assert run(led, "checkpoint").exit_code == 0
    with Ledger(led, create=False) as ledger:
        key = b"#payload/metrics/" + (18).to_bytes(8, "big")
        payload = ledger.aux_get("checkpoints", key)
        ledger.aux_put("checkpoints", key, payload[:-1] + bytes([payload[-1] ^ 0xFF]))
    res = run(led, "rank", "-s", S, "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["ranking"][0]["case"] == "a"  # rebuilt, still right
    assert res.stderr == (
        "warning: checkpoint metrics@18 ignored: its payload does not match its digest "
        "(corrupt); rebuilding from an earlier position (run `ledger checkpoint` to write a "
        "fresh one)\n"
    )
    listed = json.loads(run(led, "checkpoint", "--list", "--json").stdout)
    assert [(c["name"], c["ok"]) for c in listed["checkpoints"]] == [
        ("dag", True),
        ("metrics", False),
        ("runs", True),
        ("selections", True),
    ]


@pytest.mark.parametrize("name", ["dag", "rank", "checkpoint"])
def test_help_ends_with_an_example(name: str) -> None:
    import click

    command = cli.get_command(click.Context(cli), name)
    lines = command.help.rstrip().splitlines()
    assert "Example:" in [line.strip() for line in lines]
    assert lines[-1].strip().startswith("ledger ")
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0
    assert "Example:" in res.stdout


def test_dag_of_an_eco_merge_labels_every_edge(tmp_path) -> None:
    """Issue 18: a case made from several parents carries the ECO that made it, in
    every format, and ``log`` names its parents."""
    path = str(tmp_path / "m.ledger")
    merge = {"type": "eco_applied", "study": S, "case": "m", "parents": ["a", "b"],
             "eco": "merge_best", "eco_class": "merge"}  # fmt: skip
    with Ledger(path) as led:
        led.append(events()[:4] + [merge])
    text = run(path, "dag", "--study", S)
    assert text.exit_code == 0, text.stderr
    assert text.stdout.splitlines()[3:] == [
        "│   └── m  [stage 2, eco merge_best (merge)]  (parents: a, b)",
        "└── b  [stage 1, eco buffer]",
        "    └── m  (also a child of b, eco merge_best; drawn under a)",
    ]
    out = json.loads(run(path, "dag", "--study", S, "--json").stdout)
    assert [e for e in out["edges"] if e["child"] == "m"] == [
        {"parent": "a", "child": "m", "eco": "merge_best"},
        {"parent": "b", "child": "m", "eco": "merge_best"},
    ]
    dot = run(path, "dag", "-s", S, "--format", "dot").stdout.splitlines()
    assert '  "a" -> "m" [label="merge_best"];' in dot
    assert '  "b" -> "m" [label="merge_best"];' in dot
    mermaid = run(path, "dag", "-s", S, "--format", "mermaid").stdout
    assert mermaid.count("-->|merge_best|") == 2
    log = run(path, "log").stdout.splitlines()
    assert log[-1].endswith("case=m parents=a,b eco=merge_best")
