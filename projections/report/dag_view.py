"""The case DAG as a layered drawing: one column per stage, parents on the left.

Layout. The layers are given (a case's stage is its column), so what is left of the
Sugiyama method is ordering each column to keep edges short and uncrossed: the first
column by case id, every later one by the barycentre of each case's parents in the
columns already placed (ties and parentless cases by case id), one sweep left to right.
Each case is then placed as near its parents' mean height as the column allows
(packed top-down, never overlapping), so a study whose stages fan out — ten bases,
a thousand derived cases — draws as sibling groups beside their parents, read by
scrolling down, never as a hairball. A library (grandalf) would rank the layers itself
and spend seconds on crossing reduction at 1,000 cases; with the layers fixed this
sweep is what remains of the job.

Every node carries ``data-case`` with the full case id; long ids are shortened in the
box and given whole in its tooltip. Each edge that an ECO made is labelled with it at
the child's end (one label per child: all of a child's edges carry the same ECO).
"""

from __future__ import annotations

from typing import Any

from .context import MARK_TEXT, Context, mark_legend
from .svg import num

NODE_W = 200.0
NODE_H = 22.0
ROW = 28.0
GAP = 150.0
TOP = 34.0
LEFT = 10.0
MAX_LABEL = 27
MAX_ECO = 22


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _order(ctx: Context) -> tuple[list[int], dict[int, list[str]], dict[str, float]]:
    """Columns (stages), each column's cases in order, and each case's y."""
    dag = ctx.view.dag
    stages = dag.stages()
    columns: dict[int, list[str]] = {}
    y: dict[str, float] = {}
    for stage in stages:
        nodes = dag.cases(stage)

        def bary(case: str) -> float:
            placed = [y[p] for p in dag.nodes[case].parents if p in y]
            return sum(placed) / len(placed) if placed else float("inf")

        keyed = sorted(((bary(n.case), n.case) for n in nodes), key=lambda t: (t[0], t[1]))
        col = [case for _, case in keyed]
        columns[stage] = col
        _pack(col, {c: w for w, c in keyed}, y)
    # Back up the columns: each parent moves to the middle of its children (order kept),
    # so a fan of children sits beside its parent and edges stay short.
    column_of = {c: s for s, col in columns.items() for c in col}
    for stage in reversed(stages[:-1]):
        want = {}
        for case in columns[stage]:
            kids = [y[k] for k in dag.children(case) if column_of.get(k, stage) > stage]
            want[case] = sum(kids) / len(kids) if kids else y[case]
        _pack(columns[stage], want, y)
    return stages, columns, y


def _pack(col: list[str], want: dict[str, float], y: dict[str, float]) -> None:
    """Place ``col`` top-down in order, each as near its wanted y as the one above allows."""
    nxt = TOP
    for case in col:
        w = want[case]
        pos = max(nxt, w if w != float("inf") else nxt)
        y[case] = pos
        nxt = pos + ROW


def build(ctx: Context) -> dict[str, Any]:
    dag = ctx.view.dag
    if not dag.nodes:
        return {"empty": f"The study has no case at seq {ctx.as_of}: nothing to draw."}
    stages, columns, y = _order(ctx)
    x = {}
    for i, stage in enumerate(stages):
        for case in columns[stage]:
            x[case] = LEFT + i * (NODE_W + GAP)
    marks = ctx.marks
    runs = ctx.view.runs
    nodes = []
    for stage in stages:
        for case in columns[stage]:
            node = dag.nodes[case]
            symbol, words = MARK_TEXT[marks[case]]
            counts: dict[str, int] = {}
            for r in runs.of_case(case):
                key = "invalidated" if r.invalidated else (r.status or "running")
                counts[key] = counts.get(key, 0) + 1
            status = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no runs"
            tip = [case, f"stage {node.stage}"]
            if node.eco is not None:
                tip.append(f"eco {node.eco}" + (f" ({node.eco_class})" if node.eco_class else ""))
            if node.parents:
                tip.append("parents: " + ", ".join(node.parents))
            tip.append(f"runs: {status}")
            tip.append(words)
            if case in ctx.reasons:
                tip.append(ctx.reasons[case])
            nodes.append(
                {
                    "case": case,
                    "mark": marks[case],
                    "x": num(x[case]),
                    "y": num(y[case]),
                    "tx": num(x[case] + 6),
                    "ty": num(y[case] + NODE_H / 2 + 4),
                    "text": (symbol + " " if symbol else "") + _short(case, MAX_LABEL),
                    "title": "\n".join(tip),
                }
            )
    edges = []
    labels = []
    for e in dag.edges():
        if e.parent not in x or e.child not in x:
            continue
        x0, y0 = x[e.parent] + NODE_W, y[e.parent] + NODE_H / 2
        x1, y1 = x[e.child], y[e.child] + NODE_H / 2
        mid = (x0 + x1) / 2
        edges.append(
            {
                "d": f"M{num(x0)} {num(y0)}C{num(mid)} {num(y0)} {num(mid)} {num(y1)} "
                f"{num(x1)} {num(y1)}",
                "parent": e.parent,
                "child": e.child,
                "eco": e.eco,
            }
        )
    for stage in stages:
        for case in columns[stage]:
            node = dag.nodes[case]
            if node.eco is not None and any(p in x for p in node.parents):
                labels.append(
                    {
                        "x": num(x[case] - 4),
                        "y": num(y[case] + NODE_H / 2 - 3),
                        "text": _short(node.eco, MAX_ECO),
                        "title": f"{node.eco} ({node.eco_class})" if node.eco_class else node.eco,
                    }
                )
    heads = [
        {
            "x": num(LEFT + i * (NODE_W + GAP)),
            "text": f"stage {stage} · {len(columns[stage])} case"
            + ("s" if len(columns[stage]) != 1 else ""),
        }
        for i, stage in enumerate(stages)
    ]
    height = max(y.values()) + NODE_H + 12
    width = LEFT + len(stages) * (NODE_W + GAP) - GAP + LEFT
    return {
        "empty": None,
        "width": num(width),
        "height": num(height),
        "node_w": num(NODE_W),
        "node_h": num(NODE_H),
        "nodes": nodes,
        "edges": edges,
        "labels": labels,
        "heads": heads,
        "legend": mark_legend(set(marks.values())),
        "count": len(nodes),
        "tall": len(nodes) > 40,
    }
