"""The case DAG: studies, their cases, and the lineage that ECOs draw between them.

A case is created by ``case_created`` (any number of parents, edges unlabelled) or by
``eco_applied`` (one parent, or several: a merge; every edge labelled with the ECO).
Stage defaults to the parents' highest stage + 1 for an ECO child; depth is the length of the longest path from a
root (a case without parents), fixed when the case is created because parents always
come first. The study's own record (objectives, description, config) lives here too:
it is the root the DAG hangs from.

Everything this module returns is sorted explicitly (cases by stage then case id,
children and edges by case id, in code-point order), never by dict order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ledger.events import CaseCreated, EcoApplied, StudyCreated
from ledger.frames import Frame

from .base import BaseProjection, encode_state

__all__ = [
    "CaseNode",
    "DagProjection",
    "Edge",
    "StudyDag",
    "StudyInfo",
    "render_dot",
    "render_mermaid",
    "render_text",
]


class StudyInfo(msgspec.Struct, array_like=True, gc=False):
    study: str
    seq: int
    ts: int
    objectives: list[tuple[str, str]]  # (metric, direction), in the study's order
    description: str | None = None
    config: dict[str, Any] | None = None
    tags: list[str] | None = None


class CaseNode(msgspec.Struct, array_like=True, gc=False):
    case: str
    parents: list[str]
    stage: int
    depth: int
    seq: int
    ts: int
    eco: str | None = None
    eco_class: str | None = None
    params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "parents": list(self.parents),
            "stage": self.stage,
            "eco": self.eco,
            "eco_class": self.eco_class,
            "depth": self.depth,
            "seq": self.seq,
        }


class Edge(msgspec.Struct, frozen=True, gc=False):
    parent: str
    child: str
    eco: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "child": self.child, "eco": self.eco}


class StudyDag:
    """One study's cases and lineage. Built by ``DagProjection``; read-only for callers."""

    __slots__ = ("_children", "info", "nodes", "study")

    def __init__(self, study: str) -> None:
        self.study = study
        self.info: StudyInfo | None = None
        self.nodes: dict[str, CaseNode] = {}  # creation (seq) order
        self._children: dict[str, list[str]] = {}

    def _add(self, node: CaseNode) -> None:
        self.nodes[node.case] = node
        for parent in node.parents:
            self._children.setdefault(parent, []).append(node.case)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return list(self.info.objectives) if self.info is not None else []

    def node(self, case: str) -> CaseNode | None:
        return self.nodes.get(case)

    def cases(self, stage: int | None = None) -> list[CaseNode]:
        """Cases sorted by (stage, case id); only ``stage``'s when given."""
        nodes: Iterable[CaseNode] = self.nodes.values()
        if stage is not None:
            nodes = [n for n in nodes if n.stage == stage]
        return sorted(nodes, key=lambda n: (n.stage, n.case))

    def stages(self) -> list[int]:
        return sorted({n.stage for n in self.nodes.values()})

    def children(self, case: str) -> list[str]:
        return sorted(self._children.get(case, ()))

    def roots(self) -> list[str]:
        """Cases with no parent in this study, by case id."""
        return sorted(
            c for c, n in self.nodes.items() if not any(p in self.nodes for p in n.parents)
        )

    def edges(self) -> list[Edge]:
        """Every parent -> child edge, labelled with the ECO that made the child, sorted by
        (parent, child)."""
        out = [
            Edge(parent, node.case, node.eco)
            for node in self.nodes.values()
            for parent in node.parents
        ]
        out.sort(key=lambda e: (e.parent, e.child))
        return out

    def lineage(self, case: str) -> list[CaseNode]:
        """The chain from a root to ``case`` through each case's first parent: the ECOs
        applied, in order, to reach it."""
        chain: list[CaseNode] = []
        seen: set[str] = set()
        node = self.nodes.get(case)
        while node is not None and node.case not in seen:
            seen.add(node.case)
            chain.append(node)
            node = self.nodes.get(node.parents[0]) if node.parents else None
        chain.reverse()
        return chain

    def ancestors(self, case: str) -> set[str]:
        out: set[str] = set()
        todo = list(self.nodes[case].parents) if case in self.nodes else []
        while todo:
            c = todo.pop()
            if c in out or c not in self.nodes:
                continue
            out.add(c)
            todo.extend(self.nodes[c].parents)
        return out


class _StudyState(msgspec.Struct, array_like=True, gc=False):
    study: str
    info: StudyInfo | None
    nodes: list[CaseNode]


class _State(msgspec.Struct, array_like=True, gc=False):
    seq: int
    studies: list[_StudyState]


_decode_state = msgspec.msgpack.Decoder(_State).decode


class DagProjection(BaseProjection):
    """Folds ``study_created``, ``case_created`` and ``eco_applied``; ignores the rest."""

    name = "dag"
    version = 1
    FRAMES = True

    def __init__(self) -> None:
        super().__init__()
        self.studies: dict[str, StudyDag] = {}  # first-seen order

    def study(self, name: str) -> StudyDag | None:
        return self.studies.get(name)

    def study_names(self) -> list[str]:
        return sorted(self.studies)

    def _dag(self, study: str) -> StudyDag:
        dag = self.studies.get(study)
        if dag is None:
            dag = self.studies[study] = StudyDag(study)
        return dag

    def _fold_frame(self, frame: Frame) -> None:
        for env in frame.other:
            ev = env.event
            if type(ev) is CaseCreated:
                dag = self._dag(ev.study)
                if ev.case in dag.nodes:
                    continue
                parents = list(ev.parents or ())
                dag._add(
                    CaseNode(
                        ev.case,
                        parents,
                        ev.stage,
                        self._depth(dag, parents),
                        env.seq,
                        env.ts,
                        None,
                        None,
                        ev.params,
                    )
                )
            elif type(ev) is EcoApplied:
                dag = self._dag(ev.study)
                if ev.case in dag.nodes:
                    continue
                parents = ev.parent_ids
                if ev.stage is not None:
                    stage = ev.stage
                else:  # the parents' highest stage + 1 (a parent not seen counts as 0)
                    stage = 1 + max((self._stage(dag, p) for p in parents), default=0)
                dag._add(
                    CaseNode(
                        ev.case,
                        parents,
                        stage,
                        self._depth(dag, parents),
                        env.seq,
                        env.ts,
                        ev.eco,
                        ev.eco_class,
                        ev.params,
                    )
                )
            elif type(ev) is StudyCreated:
                dag = self._dag(ev.study)
                if dag.info is None:
                    dag.info = StudyInfo(
                        ev.study,
                        env.seq,
                        env.ts,
                        [(o.metric, o.direction) for o in ev.objectives or ()],
                        ev.description,
                        ev.config,
                        ev.tags,
                    )

    @staticmethod
    def _stage(dag: StudyDag, case: str) -> int:
        node = dag.nodes.get(case)
        return node.stage if node is not None else 0

    @staticmethod
    def _depth(dag: StudyDag, parents: list[str]) -> int:
        depths = [dag.nodes[p].depth for p in parents if p in dag.nodes]
        return 1 + max(depths) if depths else 0

    def snapshot(self) -> bytes:
        return encode_state(
            _State(
                self.seq,
                [
                    _StudyState(name, dag.info, list(dag.nodes.values()))
                    for name, dag in self.studies.items()
                ],
            )
        )

    def restore(self, data: bytes) -> None:
        state = _decode_state(data)
        studies: dict[str, StudyDag] = {}
        for st in state.studies:
            dag = StudyDag(st.study)
            dag.info = st.info
            for node in st.nodes:
                dag._add(node)
            studies[st.study] = dag
        self.studies = studies
        self.seq = state.seq


# ------------------------------------------------------------------------------ drawing


def _label(node: CaseNode) -> str:
    out = f"stage {node.stage}"
    if node.eco is not None:
        out += f", eco {node.eco}" + (f" ({node.eco_class})" if node.eco_class else "")
    return out


def render_text(dag: StudyDag) -> str:
    """The lineage as an indented tree, roots and children by case id.

    A case with several parents is drawn in full under the first parent the walk
    reaches, and named with a note under the others, so the tree stays a tree.
    """
    lines: list[str] = []
    shown: dict[str, str] = {}  # case -> the parent it was drawn under ("" for a root)
    # Iterative depth-first walk: (case, parent, prefix, is_last, is_root)
    stack: list[tuple[str, str, str, bool, bool]] = [
        (c, "", "", True, True) for c in reversed(dag.roots())
    ]
    while stack:
        case, parent, prefix, last, root = stack.pop()
        node = dag.nodes[case]
        branch = "" if root else ("└── " if last else "├── ")
        if case in shown:
            where = f"under {shown[case]}" if shown[case] else "as a root"
            eco = f", eco {node.eco}" if node.eco is not None else ""
            lines.append(f"{prefix}{branch}{case}  (also a child of {parent}{eco}; drawn {where})")
            continue
        shown[case] = parent
        note = ""
        if len(node.parents) > 1:
            note = f"  (parents: {', '.join(node.parents)})"
        lines.append(f"{prefix}{branch}{case}  [{_label(node)}]{note}")
        kids = dag.children(case)
        child_prefix = prefix if root else prefix + ("    " if last else "│   ")
        for i, kid in reversed(list(enumerate(kids))):
            stack.append((kid, case, child_prefix, i == len(kids) - 1, False))
    return "\n".join(lines)


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(dag: StudyDag) -> str:
    """Graphviz DOT: one box per case (case id, stage, ECO), edges labelled by ECO."""
    out = [f"digraph {_dot_str(dag.study)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for node in dag.cases():
        label = _dot_str(node.case + "\n" + _label(node)).replace("\n", "\\n")
        out.append(f"  {_dot_str(node.case)} [label={label}];")
    for edge in dag.edges():
        attr = f" [label={_dot_str(edge.eco)}]" if edge.eco is not None else ""
        out.append(f"  {_dot_str(edge.parent)} -> {_dot_str(edge.child)}{attr};")
    out.append("}")
    return "\n".join(out)


def _mermaid_str(s: str) -> str:
    for a, b in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        s = s.replace(a, b)
    return s


def render_mermaid(dag: StudyDag) -> str:
    """A Mermaid flowchart; node ids are n0, n1... in (stage, case) order so that any
    case id is safe."""
    nodes = dag.cases()
    ids = {n.case: f"n{i}" for i, n in enumerate(nodes)}
    out = ["graph TD"]
    for n in nodes:
        out.append(f'  {ids[n.case]}["{_mermaid_str(n.case)}<br/>{_mermaid_str(_label(n))}"]')
    for e in dag.edges():
        if e.parent not in ids or e.child not in ids:
            continue
        label = f"|{_mermaid_str(e.eco)}|" if e.eco is not None else ""
        out.append(f"  {ids[e.parent]} -->{label} {ids[e.child]}")
    return "\n".join(out)
