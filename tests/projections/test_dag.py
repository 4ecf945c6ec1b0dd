from __future__ import annotations

import msgspec
import pytest
from proj_streams import Stream, fold

from ledger import Envelope
from projections.base import Projection, build
from projections.dag import DagProjection, render_dot, render_mermaid, render_text
from projections.study import builtin_projections, load_study


def chip_stream() -> Stream:
    s = Stream("chip")
    s.created([("qor", "max")], description="a chip study", config={"pdk": "sky130"})
    s.case("base", params={"util": 0.5})
    s.eco("a", "base", "resize", "sizing", params={"cells": 3})
    s.eco("b", "base", "buffer")
    s.eco("c", "a", "swap", "sizing", stage=5)
    s.case("m", parents=["a", "b"], stage=2)
    s.case("z", stage=0)
    return s


@pytest.fixture
def chip(ledger):
    ledger.append(chip_stream().events)
    return ledger


def test_nodes_parents_stage_eco_depth(chip) -> None:
    dag = build(chip, DagProjection()).study("chip")
    got = {n.case: (n.parents, n.stage, n.eco, n.eco_class, n.depth, n.seq) for n in dag.cases()}
    assert got == {
        "base": ([], 0, None, None, 0, 2),
        "a": (["base"], 1, "resize", "sizing", 1, 3),
        "b": (["base"], 1, "buffer", None, 1, 4),
        "c": (["a"], 5, "swap", "sizing", 2, 5),  # explicit stage wins over parent + 1
        "m": (["a", "b"], 2, None, None, 2, 6),
        "z": ([], 0, None, None, 0, 7),
    }
    # sorted by (stage, case id)
    assert [n.case for n in dag.cases()] == ["base", "z", "a", "b", "m", "c"]
    assert [n.case for n in dag.cases(stage=1)] == ["a", "b"]
    assert dag.stages() == [0, 1, 2, 5]
    assert dag.node("a").params == {"cells": 3}
    assert dag.info.objectives == [("qor", "max")]
    assert dag.info.description == "a chip study"
    assert dag.info.config == {"pdk": "sky130"}


def test_children_edges_roots_lineage(chip) -> None:
    dag = build(chip, DagProjection()).study("chip")
    assert dag.children("base") == ["a", "b"]
    assert dag.children("a") == ["c", "m"]
    assert dag.children("m") == []
    assert dag.roots() == ["base", "z"]
    assert [(e.parent, e.child, e.eco) for e in dag.edges()] == [
        ("a", "c", "swap"),
        ("a", "m", None),
        ("b", "m", None),
        ("base", "a", "resize"),
        ("base", "b", "buffer"),
    ]
    assert [n.case for n in dag.lineage("c")] == ["base", "a", "c"]
    assert [n.eco for n in dag.lineage("c")] == [None, "resize", "swap"]
    assert dag.ancestors("m") == {"a", "b", "base"}
    assert dag.ancestors("base") == set()


def test_time_travel_shows_the_dag_as_it_was(chip) -> None:
    dag = build(chip, DagProjection(), as_of=4).study("chip")
    assert [n.case for n in dag.cases()] == ["base", "a", "b"]
    assert build(chip, DagProjection(), as_of=0).study("chip") is None


def test_unknown_events_are_ignored_by_every_builtin() -> None:
    class Alien(msgspec.Struct):
        study: str = "chip"
        TYPE = "from_the_future"

    for proj in builtin_projections():
        assert isinstance(proj, Projection)
        empty = proj.snapshot()
        proj.apply(Envelope(1, "x", 0, Alien()))
        proj.apply_batch([Envelope(2, "y", 0, Alien()), Envelope(3, "z", 0, Alien())])
        assert proj.seq == 3
        fresh = type(proj)()
        fresh.seq = 3
        assert proj.snapshot() == fresh.snapshot() != empty


def test_snapshot_restore_roundtrip(chip) -> None:
    proj = fold(chip, DagProjection())
    again = DagProjection()
    again.restore(proj.snapshot())
    assert again.snapshot() == proj.snapshot()
    assert again.seq == 7
    assert again.study("chip").children("a") == ["c", "m"]


def test_dag_dict_shape(chip) -> None:
    out = load_study(chip, "chip").dag_dict()
    assert out["as_of"] == 7
    assert out["nodes"][0] == {
        "case": "base",
        "parents": [],
        "stage": 0,
        "eco": None,
        "eco_class": None,
        "depth": 0,
        "seq": 2,
        "children": ["a", "b"],
    }
    assert {"parent": "a", "child": "c", "eco": "swap"} in out["edges"]
    assert [n["case"] for n in out["nodes"]] == ["base", "z", "a", "b", "m", "c"]


def test_text_tree_draws_a_shared_child_once(chip) -> None:
    dag = build(chip, DagProjection()).study("chip")
    assert render_text(dag) == "\n".join(
        [
            "base  [stage 0]",
            "├── a  [stage 1, eco resize (sizing)]",
            "│   ├── c  [stage 5, eco swap (sizing)]",
            "│   └── m  [stage 2]  (parents: a, b)",
            "└── b  [stage 1, eco buffer]",
            "    └── m  (also a child of b; drawn under a)",
            "z  [stage 0]",
        ]
    )


def test_text_tree_survives_a_deep_chain(ledger) -> None:
    s = Stream("deep").created()
    s.case("c0")
    for i in range(1, 3000):
        s.eco(f"c{i}", f"c{i - 1}", "step")
    ledger.append(s.events)
    lines = render_text(build(ledger, DagProjection()).study("deep")).splitlines()
    assert len(lines) == 3000
    assert lines[-1].endswith("c2999  [stage 2999, eco step]")


def test_dot_and_mermaid_escape_ids(ledger) -> None:
    s = Stream("q").created()
    s.case('say "hi"')
    s.eco("a|b<c>", 'say "hi"', "e#1")
    ledger.append(s.events)
    dag = build(ledger, DagProjection()).study("q")
    dot = render_dot(dag)
    assert '  "say \\"hi\\"" -> "a|b<c>" [label="e#1"];' in dot
    assert dot.startswith('digraph "q" {')
    assert dot.endswith("}")
    mermaid = render_mermaid(dag).splitlines()
    assert mermaid == [
        "graph TD",
        '  n0["say #quot;hi#quot;<br/>stage 0"]',
        '  n1["a#124;b#lt;c#gt;<br/>stage 1, eco e#35;1"]',
        "  n0 -->|e#35;1| n1",
    ]


# -- issue 18: an ECO applied to several parents (a merge of survivors) ------------------


def merge_stream() -> Stream:
    s = Stream("chip").created()
    s.case("base")
    s.eco("a", "base", "resize", "sizing")
    s.eco("b", "base", "buffer")
    s._add("eco_applied", case="m", parents=["b", "a"], eco="merge_best", eco_class="merge")
    s._add("eco_applied", case="n", parents=["m"], eco="polish")  # a list of one
    return s


def test_an_eco_with_several_parents_labels_every_edge(ledger) -> None:
    ledger.append(merge_stream().events)
    dag = build(ledger, DagProjection()).study("chip")
    m = dag.node("m")
    assert (m.parents, m.stage, m.eco, m.eco_class, m.depth) == (
        ["b", "a"],
        2,  # the parents' highest stage + 1
        "merge_best",
        "merge",
        2,
    )
    assert (dag.node("n").parents, dag.node("n").stage) == (["m"], 3)
    assert [(e.parent, e.child, e.eco) for e in dag.edges()] == [
        ("a", "m", "merge_best"),
        ("b", "m", "merge_best"),
        ("base", "a", "resize"),
        ("base", "b", "buffer"),
        ("m", "n", "polish"),
    ]
    assert render_text(dag) == "\n".join(
        [
            "base  [stage 0]",
            "├── a  [stage 1, eco resize (sizing)]",
            "│   └── m  [stage 2, eco merge_best (merge)]  (parents: b, a)",
            "│       └── n  [stage 3, eco polish]",
            "└── b  [stage 1, eco buffer]",
            "    └── m  (also a child of b, eco merge_best; drawn under a)",
        ]
    )
    dot = render_dot(dag)
    assert '  "a" -> "m" [label="merge_best"];' in dot
    assert '  "b" -> "m" [label="merge_best"];' in dot
    mermaid = render_mermaid(dag)
    assert mermaid.count("-->|merge_best|") == 2
    out = load_study(ledger, "chip").dag_dict()  # `dag --json` and study.json's edges
    assert {"parent": "a", "child": "m", "eco": "merge_best"} in out["edges"]
    assert {"parent": "b", "child": "m", "eco": "merge_best"} in out["edges"]
    node = next(n for n in out["nodes"] if n["case"] == "m")
    assert (node["parents"], node["eco"], node["eco_class"]) == (["b", "a"], "merge_best", "merge")
