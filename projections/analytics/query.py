"""The query every analysis takes: which runs of which cases, which metric, as of when.

::

    q = (Query(ledger).study("chip").stage(1).cases("s1-*").runs(status="completed")
         .metric("wns_ps", agg="mean").where_param("util", ">", 0.6).as_of(4120))
    q.table()        # pyarrow.Table, one row per case here (agg given), else per run
    q.collect()      # QueryFrame: the same columns, the exclusions with reasons, as_of

A ``Query`` is immutable: each method returns a new one, so a base query can be shared
and refined. Nothing is read until ``collect()`` / ``table()``; then the study is
loaded once (``projections.study.load_study``, checkpoints included) at ``as_of``.

What the filters mean:

- case filters choose the population: ``stage``, ``cases`` (shell globs, matched with
  ``fnmatchcase``: case-sensitive, ``*``/``?``/``[...]``), ``eco``/``eco_class``
  (the ECO that created the case), ``where_param`` (the case's params; a case without
  the param never matches, whatever the operator). A stage, glob, ECO or param that
  matches no case of the study is an error, so a typo is never an empty answer;
- run filters judge the runs of those cases: ``runs(status=...)`` (``running`` for a
  run not finished yet) and ``runs(host=...)``. An invalidated run is always left out.
  Every run left out by a judgement — invalidated, or of another status — is listed in
  ``exclusions`` with its reason; runs of other hosts are not (the host filter is part
  of the population, like the case filters).

Rows are sorted by (case, run) in code-point order. Columns: ``case``, ``run``,
``stage``, ``eco``, ``eco_class``, ``status``, ``seed``, ``host``, ``attempt``,
``error``, ``started_seq``, ``finished_seq``, one ``param.<name>`` per param any
selected case sets (sorted by name), then one column per metric holding the run's final
value in force (null when the run has none; NaN stays NaN). With an ``agg`` on the
metrics, one row per case instead: ``case``, ``stage``, ``eco``, ``eco_class``, ``runs``
(the runs aggregated), params, metrics — the aggregate of rankings (docs/architecture.md, Projections; ``mean`` and
``median`` propagate NaN, ``best`` ignores it, ``last`` is the latest recorded). A
metric named like another column is written ``metric.<name>``.

The columns are built as numpy arrays and lists; Arrow is imported only when a table is
asked for (a command that prints text never pays for it).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import numpy as np

from ledger.numbers import is_number
from projections.comparisons import COMPARISONS
from projections.errors import QueryError as QueryError

if TYPE_CHECKING:
    import pyarrow as pa

    from ledger import Ledger
    from projections.study import StudyView

__all__ = [
    "AGGREGATES",
    "BASE_COLUMNS",
    "CASE_COLUMNS",
    "Columns",
    "Exclusion",
    "MetricSpec",
    "OPS",
    "ParamFilter",
    "Query",
    "QueryError",
    "QueryFrame",
    "QuerySpec",
    "STATUSES",
    "parse_param_filter",
    "same_value",
    "select_cases",
]

AGGREGATES = ("mean", "median", "best", "last")
OPS = ("==", "!=", ">=", "<=", ">", "<", "in", "not in")
STATUSES = ("completed", "failed", "pruned", "timeout", "cancelled", "interrupted", "running")
BASE_COLUMNS = (
    "case",
    "run",
    "stage",
    "eco",
    "eco_class",
    "status",
    "seed",
    "host",
    "attempt",
    "error",
    "started_seq",
    "finished_seq",
)
CASE_COLUMNS = ("case", "stage", "eco", "eco_class", "runs")


_RUN_TYPES = {
    "case": "str",
    "run": "str",
    "eco": "str",
    "eco_class": "str",
    "status": "str",
    "seed": "int",
    "host": "str",
    "attempt": "int",
    "error": "str",
    "finished_seq": "int",
}


def _known(names: Iterable[Any], limit: int = 12) -> str:
    items = [str(n) for n in names]
    if not items:
        return "none"
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ----------------------------------------------------------------------------- spec


class MetricSpec(msgspec.Struct, frozen=True):
    name: str
    agg: str | None = None
    direction: str | None = None


class ParamFilter(msgspec.Struct, frozen=True):
    name: str
    op: str
    value: Any

    @property
    def text(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"

    def matches(self, value: Any, present: bool) -> bool:
        """Whether a case whose param holds ``value`` passes. A missing param never
        passes; values of kinds that do not compare (a string and a number) do not
        either."""
        if not present:
            return False
        op, want = self.op, self.value
        if op in ("in", "not in"):
            found = any(same_value(value, w) for w in want)
            return found if op == "in" else not found
        if op == "==":
            return same_value(value, want)
        if op == "!=":
            return _comparable(value, want) and not same_value(value, want)
        if not _comparable(value, want) or isinstance(value, bool) or isinstance(want, bool):
            return False
        try:
            return COMPARISONS[op](value, want)
        except TypeError:
            return False


def _comparable(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return True
    return type(a) is type(b)


def same_value(a: Any, b: Any) -> bool:
    """Equal and of comparable kinds: numbers by value (1 == 1.0), never a bool as 1."""
    return _comparable(a, b) and a == b


class QuerySpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``Query`` asks, as plain data (``to_dict()`` goes into every result)."""

    study: str | None = None
    stages: tuple[int, ...] = ()
    cases: tuple[str, ...] = ()
    ecos: tuple[str, ...] = ()
    eco_classes: tuple[str, ...] = ()
    params: tuple[ParamFilter, ...] = ()
    statuses: tuple[str, ...] | None = None
    hosts: tuple[str, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    as_of: int | None = None


def parse_param_filter(expr: str) -> ParamFilter:
    """``'util>0.6'``, ``'lib==nangate45'``, ``"flow in ['a','b']"`` -> ParamFilter.

    The value is read as JSON when it parses (numbers, true/false, null, quoted strings,
    lists), else taken as a bare string. This is the analytics commands' ``--where``, on
    a case's params; the export's ``--where`` filters rows by their fields
    (:func:`projections.export.select.parse_where`). Raises ``QueryError``.
    """
    import json

    text = expr.strip()
    for op in (" not in ", " in ", "==", "!=", ">=", "<=", ">", "<"):
        name, sep, raw = text.partition(op)
        if sep and name.strip() and raw.strip():
            raw = raw.strip()
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw.strip("'\"") if op.strip() not in ("in", "not in") else None
            if op.strip() in ("in", "not in"):
                if not isinstance(value, list):
                    raise QueryError(
                        f"cannot read {expr!r}: after {op.strip()!r} write a JSON list, "
                        'e.g. \'flow in ["a", "b"]\''
                    )
            return ParamFilter(name.strip(), op.strip(), value)
    raise QueryError(
        f"cannot read the param filter {expr!r}: write NAME OP VALUE with OP one of "
        f"{', '.join(OPS)} (e.g. 'util>0.6', 'lib==nangate45')"
    )


# -------------------------------------------------------------------------- columns


class Columns:
    """Named columns of one length (numpy arrays or object arrays), Arrow on demand.

    ``nulls[name]`` marks missing entries of a float column (a run without that metric)
    apart from NaN values, so Arrow gets a null there and NaN stays NaN. ``types`` pins
    the Arrow type of an object column ("int", "float", "str", "bool"); others are
    inferred, and a column of mixed kinds (a param set to 1 here and "x" there) becomes
    text.
    """

    __slots__ = ("_arrow", "data", "nulls", "types")

    def __init__(
        self,
        data: dict[str, np.ndarray],
        nulls: dict[str, np.ndarray] | None = None,
        types: dict[str, str] | None = None,
    ) -> None:
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self.data = data
        self.nulls = nulls or {}
        self.types = types or {}
        self._arrow: Any = None

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], types: dict[str, str]) -> Columns:
        """Columns ``types`` (name -> kind, in order) picked from row dicts; a float
        column becomes float64 with None (and NaN: result tables spell "undefined" as
        None, so a NaN there means the same) as null."""
        data: dict[str, np.ndarray] = {}
        nulls: dict[str, np.ndarray] = {}
        obj_types: dict[str, str] = {}
        for name, kind in types.items():
            items = [r.get(name) for r in rows]
            if kind == "float":
                data[name] = np.array(items, np.float64)  # None -> NaN
                nulls[name] = np.isnan(data[name])
            else:
                data[name] = _obj(items)
                if kind != "any":
                    obj_types[name] = kind
        return cls(data, nulls, obj_types)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    @property
    def names(self) -> list[str]:
        return list(self.data)

    def valid(self, name: str) -> np.ndarray:
        """True where the column holds a value (not null)."""
        miss = self.nulls.get(name)
        if miss is not None:
            return ~miss
        col = self.data[name]
        if col.dtype == object:
            return np.fromiter((v is not None for v in col), bool, len(col))
        return np.ones(len(col), bool)

    def take(self, index: np.ndarray) -> Columns:
        """The rows at ``index`` (positions or a boolean mask), in that order."""
        return Columns(
            {k: v[index] for k, v in self.data.items()},
            {k: v[index] for k, v in self.nulls.items()},
            self.types,
        )

    def with_column(self, name: str, values: np.ndarray, kind: str | None = None) -> Columns:
        data = dict(self.data)
        data[name] = values
        types = dict(self.types)
        if kind is not None:
            types[name] = kind
        return Columns(data, dict(self.nulls), types)

    def rows(self) -> list[dict[str, Any]]:
        """Row dicts with builtins (None for nulls)."""
        cols = {k: self.pylist(k) for k in self.data}
        return [dict(zip(cols, vals)) for vals in zip(*cols.values())]

    def pylist(self, name: str) -> list[Any]:
        col = self.data[name]
        out = col.tolist()
        miss = self.nulls.get(name)
        if miss is not None and miss.any():
            out = [None if m else v for v, m in zip(out, miss.tolist())]
        return out

    def to_arrow(self) -> pa.Table:
        if self._arrow is None:
            self._arrow = _to_arrow(self)
        return self._arrow


_ARROW_TYPES = {"int": "int64", "float": "float64", "str": "string", "bool": "bool_"}


def _to_arrow(cols: Columns) -> pa.Table:
    import pyarrow as pa

    arrays = {}
    for name, col in cols.data.items():
        miss = cols.nulls.get(name)
        if col.dtype != object:
            arrays[name] = pa.array(col, mask=miss if miss is not None and miss.any() else None)
            continue
        items = col.tolist()
        kind = cols.types.get(name)
        if kind is not None:
            if kind == "str":
                items = [None if v is None else _text(v) for v in items]
            try:
                arrays[name] = pa.array(items, type=getattr(pa, _ARROW_TYPES[kind])())
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                pass  # e.g. a seed past int64: inferred below
        try:
            arr = pa.array(items)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            arr = pa.array([None if v is None else _text(v) for v in items], type=pa.string())
        if pa.types.is_null(arr.type):
            arr = arr.cast(pa.string())
        arrays[name] = arr
    return pa.table(arrays)


def _text(v: Any) -> str:
    """A param value of no single Arrow type, as text (JSON for lists and objects)."""
    if isinstance(v, str):
        return v
    from ledger.codec import dumps

    return dumps(v).decode()


def _flat(v: Any) -> Any:
    """Lists and objects in params become canonical JSON text (a column stays flat)."""
    if isinstance(v, (dict, list)):
        return _text(v)
    return v


def _obj(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


# ---------------------------------------------------------------------------- frame


class Exclusion(msgspec.Struct, frozen=True):
    """A run (or a whole case, ``run`` None) left out, and why."""

    case: str
    run: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "case": self.case, "reason": self.reason}


class QueryFrame(NamedTuple):
    """What a query yields: its columns, what it left out and why, and where in time."""

    query: Query
    study: str
    as_of: int
    view: StudyView
    columns: Columns
    exclusions: tuple[Exclusion, ...]
    metrics: tuple[MetricSpec, ...]
    metric_columns: dict[str, str]  # metric name -> column name
    params: tuple[str, ...]  # param names (columns are param.<name>)
    per_case: bool
    cases: tuple[str, ...]  # the cases the case filters chose, sorted

    @property
    def table(self) -> pa.Table:
        return self.columns.to_arrow()


# ---------------------------------------------------------------------------- query


class Query:
    """An immutable description of the rows an analysis uses (see the module doc)."""

    __slots__ = ("ledger", "spec")

    def __init__(self, ledger: Ledger, spec: QuerySpec | None = None) -> None:
        self.ledger = ledger
        self.spec = spec if spec is not None else QuerySpec()

    def _replace(self, **changes: Any) -> Query:
        return Query(self.ledger, msgspec.structs.replace(self.spec, **changes))

    # -- case filters --------------------------------------------------------------

    def study(self, name: str) -> Query:
        return self._replace(study=str(name))

    def stage(self, *stages: int) -> Query:
        """Only cases of these stages (``stage()`` clears the filter)."""
        out = []
        for s in stages:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise QueryError(f"a stage is a whole number >= 0, got {s!r}")
            out.append(int(s))
        return self._replace(stages=tuple(sorted(set(out))))

    def cases(self, *patterns: str) -> Query:
        """Only cases whose id matches one of these globs (``cases()`` clears it)."""
        for p in patterns:
            if not isinstance(p, str) or not p:
                raise QueryError(f"a case pattern is a non-empty string, got {p!r}")
        return self._replace(cases=tuple(dict.fromkeys(patterns)))

    def eco(self, *names: str) -> Query:
        """Only cases created by one of these ECOs."""
        return self._replace(ecos=tuple(dict.fromkeys(names)))

    def eco_class(self, *names: str) -> Query:
        """Only cases created by an ECO of one of these classes."""
        return self._replace(eco_classes=tuple(dict.fromkeys(names)))

    def where_param(self, name: str, op: str, value: Any) -> Query:
        """Only cases whose param ``name`` satisfies ``op value`` (filters add up)."""
        if op not in OPS:
            raise QueryError(f"unknown operator {op!r} in where_param; use one of {', '.join(OPS)}")
        if op in ("in", "not in"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise QueryError(
                    f"where_param {name!r} {op!r} takes a list of values, got {value!r}"
                )
            value = tuple(value)
        elif isinstance(value, float) and math.isnan(value):
            raise QueryError(f"where_param {name!r}: NaN compares with nothing; pick a number")
        return self._replace(params=self.spec.params + (ParamFilter(str(name), op, value),))

    # -- run filters -----------------------------------------------------------------

    def runs(
        self,
        status: str | Iterable[str] | None = None,
        *,
        host: str | Iterable[str] | None = None,
    ) -> Query:
        """Only runs of these statuses (``running``: not finished) and hosts. A None
        argument leaves that filter as it was."""
        changes: dict[str, Any] = {}
        if status is not None:
            items = (status,) if isinstance(status, str) else tuple(status)
            bad = [s for s in items if s not in STATUSES]
            if bad:
                raise QueryError(f"unknown run status {bad[0]!r}; use one of {', '.join(STATUSES)}")
            changes["statuses"] = tuple(dict.fromkeys(items))
        if host is not None:
            changes["hosts"] = (host,) if isinstance(host, str) else tuple(dict.fromkeys(host))
        return self._replace(**changes)

    def metric(self, name: str, agg: str | None = None, direction: str | None = None) -> Query:
        """Add the metric's final value as a column. With ``agg`` (mean, median, best,
        last) the table has one row per case. ``direction`` (min/max) is needed for
        ``best`` when the metric is not one of the study's objectives."""
        if agg is not None and agg not in AGGREGATES:
            raise QueryError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        if direction is not None and direction not in ("min", "max"):
            raise QueryError(f"unknown direction {direction!r}; use min or max")
        kept = tuple(m for m in self.spec.metrics if m.name != name)
        return self._replace(metrics=kept + (MetricSpec(str(name), agg, direction),))

    def as_of(self, seq: int | None) -> Query:
        """The state after event ``seq`` (None: the head at collect time)."""
        if seq is not None and (isinstance(seq, bool) or int(seq) != seq or seq < 0):
            raise QueryError(f"as_of is a seq >= 0, got {seq!r}")
        return self._replace(as_of=None if seq is None else int(seq))

    # -- reading ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready builtins (lists, param filters as text)."""
        d = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in msgspec.to_builtins(self.spec).items()
        }
        d["metrics"] = [msgspec.to_builtins(m) for m in self.spec.metrics]
        d["params"] = [f.text for f in self.spec.params]
        return d

    def __repr__(self) -> str:
        s = self.spec
        parts = ["Query(ledger)"]
        if s.study is not None:
            parts.append(f".study({s.study!r})")
        if s.stages:
            parts.append(f".stage({', '.join(map(str, s.stages))})")
        if s.cases:
            parts.append(f".cases({', '.join(map(repr, s.cases))})")
        if s.ecos:
            parts.append(f".eco({', '.join(map(repr, s.ecos))})")
        if s.eco_classes:
            parts.append(f".eco_class({', '.join(map(repr, s.eco_classes))})")
        if s.statuses is not None or s.hosts:
            args = []
            if s.statuses is not None:
                st = s.statuses[0] if len(s.statuses) == 1 else list(s.statuses)
                args.append(f"status={st!r}")
            if s.hosts:
                args.append(f"host={(s.hosts[0] if len(s.hosts) == 1 else list(s.hosts))!r}")
            parts.append(f".runs({', '.join(args)})")
        for m in s.metrics:
            extra = "".join(
                f", {k}={v!r}" for k, v in (("agg", m.agg), ("direction", m.direction)) if v
            )
            parts.append(f".metric({m.name!r}{extra})")
        for f in s.params:
            parts.append(f".where_param({f.name!r}, {f.op!r}, {f.value!r})")
        if s.as_of is not None:
            parts.append(f".as_of({s.as_of})")
        return "".join(parts)

    def load(self) -> StudyView:
        """The study's projections at ``as_of`` (one read of its events).

        Raises ``UnknownStudy``, ``AsOfError``, ``ProjectionError``.
        """
        from projections.study import load_study, resolve_study

        study = resolve_study(self.ledger, self.spec.study)
        return load_study(self.ledger, study, self.spec.as_of)

    def collect(self, view: StudyView | None = None) -> QueryFrame:
        """Run the query (on ``view`` when given: several queries, one load).

        Raises ``QueryError`` (unknown stage, case pattern, ECO, param or metric; an
        aggregate without a direction), plus what ``load`` raises.
        """
        if view is None:
            view = self.load()
        s = self.spec
        if (s.study is not None and s.study != view.study) or (
            s.as_of is not None and s.as_of != view.as_of
        ):
            raise QueryError(
                f"the view is of study {view.study!r} at seq {view.as_of}, the query asks "
                f"for {s.study!r} at {s.as_of}; load the view with query.load()"
            )
        return _collect(self, view)

    def table(self) -> pa.Table:
        """``collect().table``: a pyarrow Table of one row per run (or per case)."""
        return self.collect().table


# -------------------------------------------------------------------------- collect


def select_cases(spec: QuerySpec, view: StudyView) -> list[Any]:
    """The DAG nodes the case filters of ``spec`` choose, sorted by case id. A stage,
    glob, ECO or param that matches no case of the study raises ``QueryError``."""
    dag = view.dag
    where = f"study {view.study!r} at seq {view.as_of}"
    nodes = sorted(dag.nodes.values(), key=lambda n: n.case)
    if spec.stages:
        known = dag.stages()
        missing = [s for s in spec.stages if s not in known]
        if missing:
            raise QueryError(f"{where} has no case in stage {missing[0]} (stages: {_known(known)})")
        nodes = [n for n in nodes if n.stage in spec.stages]
    if spec.cases:
        all_ids = [n.case for n in dag.nodes.values()]
        for pat in spec.cases:
            if not any(fnmatch.fnmatchcase(c, pat) for c in all_ids):
                raise QueryError(
                    f"no case of {where} matches {pat!r} (cases: {_known(sorted(all_ids))})"
                )
        nodes = [n for n in nodes if any(fnmatch.fnmatchcase(n.case, p) for p in spec.cases)]
    for attr, wanted, label in (
        ("eco", spec.ecos, "ECO"),
        ("eco_class", spec.eco_classes, "ECO class"),
    ):
        if not wanted:
            continue
        known_vals = sorted({getattr(n, attr) for n in dag.nodes.values()} - {None})
        for w in wanted:
            if w not in known_vals:
                raise QueryError(f"{where} has no {label} {w!r} ({label}s: {_known(known_vals)})")
        nodes = [n for n in nodes if getattr(n, attr) in wanted]
    if spec.params:
        names = sorted({k for n in dag.nodes.values() for k in (n.params or {})})
        for f in spec.params:
            if f.name not in names:
                raise QueryError(
                    f"no case of {where} sets the param {f.name!r} (params: {_known(names)})"
                )
        nodes = [
            n
            for n in nodes
            if all(
                f.matches((n.params or {}).get(f.name), f.name in (n.params or {}))
                for f in spec.params
            )
        ]
    return nodes


def _check_metrics(spec: QuerySpec, view: StudyView) -> dict[str, str | None]:
    """Each metric of the query checked against the study; its direction for ``best``."""
    metrics = spec.metrics
    if not metrics:
        return {}
    known = view.metrics.metric_names(view.study)
    objectives = dict(view.objectives)
    aggs = {m.agg is None for m in metrics}
    if len(aggs) > 1:
        raise QueryError(
            "give an agg to every metric of the query or to none (one row per case, or one per run)"
        )
    out: dict[str, str | None] = {}
    for m in metrics:
        if m.name not in known:
            raise QueryError(
                f"study {view.study!r} has no metric {m.name!r} at seq {view.as_of} "
                f"(metrics: {_known(known)})"
            )
        direction = m.direction or objectives.get(m.name)
        if m.agg == "best" and direction is None:
            raise QueryError(
                f"agg 'best' of {m.name!r} needs a direction: it is not an objective of "
                f"study {view.study!r}; pass direction='min' or 'max'"
            )
        out[m.name] = direction
    return out


def _collect(query: Query, view: StudyView) -> QueryFrame:
    spec = query.spec
    nodes = select_cases(spec, view)
    directions = _check_metrics(spec, view)
    judged = _judge_runs(spec, view, nodes)
    param_names = sorted({k for n in nodes for k in (n.params or {})})
    metric_columns = _metric_column_names(spec)
    values, missing, seqs = _final_values(spec, view, judged.runs)
    per_case = bool(spec.metrics) and spec.metrics[0].agg is not None
    if not per_case:
        columns = _per_run(
            judged.runs, judged.nodes, values, missing, spec, metric_columns, param_names
        )
    else:
        columns = _per_case(
            nodes,
            judged.nodes,
            values,
            missing,
            seqs,
            spec,
            directions,
            metric_columns,
            param_names,
            judged.exclusions,
            judged.left,
        )
    exclusions = sorted(judged.exclusions, key=lambda e: (e.case, e.run or ""))
    return QueryFrame(
        query=query,
        study=view.study,
        as_of=view.as_of,
        view=view,
        columns=columns,
        exclusions=tuple(exclusions),
        metrics=spec.metrics,
        metric_columns=metric_columns,
        params=tuple(param_names),
        per_case=per_case,
        cases=tuple(nd.case for nd in nodes),
    )


class _Judged(NamedTuple):
    """The runs the run filters keep (each with its case's node), and the others."""

    runs: list[Any]
    nodes: list[Any]  # the case node of each kept run
    exclusions: list[Exclusion]
    left: dict[str, list[str]]  # case -> what each left-out run was, for per-case notes


def _judge_runs(spec: QuerySpec, view: StudyView, nodes: list[Any]) -> _Judged:
    """Every run of the chosen cases, kept or left out with its reason (runs of other
    hosts are neither: the host filter is part of the population)."""
    hosts = set(spec.hosts)
    out = _Judged([], [], [], {})
    for node in nodes:
        for info in sorted(view.runs.of_case(node.case), key=lambda r: r.run):
            if hosts and info.host not in hosts:
                continue
            why, state = _left_out(info, spec.statuses)
            if why is None:
                out.runs.append(info)
                out.nodes.append(node)
                continue
            out.exclusions.append(Exclusion(node.case, info.run, why))
            out.left.setdefault(node.case, []).append(state)
    return out


def _left_out(info: Any, statuses: tuple[str, ...] | None) -> tuple[str | None, str]:
    """(why the run is left out or None, what it was)."""
    if info.invalidated is not None:
        return f"invalidated at seq {info.invalidated_seq}: {info.invalidated}", "invalidated"
    status = info.status or "running"
    if statuses is not None and status not in statuses:
        return f"status {status}, not {' or '.join(statuses)}", status
    return None, status


def _metric_column_names(spec: QuerySpec) -> dict[str, str]:
    """Metric name -> column name (``metric.<name>`` when it would clash)."""
    reserved = set(BASE_COLUMNS) | set(CASE_COLUMNS)
    return {
        m.name: (
            f"metric.{m.name}"
            if m.name in reserved or m.name.startswith(("param.", "metric."))
            else m.name
        )
        for m in spec.metrics
    }


def _final_values(
    spec: QuerySpec, view: StudyView, runs: list[Any]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per metric of the query, each kept run's final value in force (NaN where it has
    none), whether it has none, and the value's seq."""
    n = len(runs)
    values: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    seqs: dict[str, np.ndarray] = {}
    if not spec.metrics:
        return values, missing, seqs
    finals = view.finals_by_metric([m.name for m in spec.metrics], [r.run for r in runs])
    for m in spec.metrics:
        v = np.full(n, np.nan)
        miss = np.ones(n, bool)
        sq = np.zeros(n, np.int64)
        got = finals.get(m.name)
        if got is not None:
            pos, vals, s = got
            v[pos] = vals
            miss[pos] = False
            sq[pos] = s
        values[m.name], missing[m.name], seqs[m.name] = v, miss, sq
    return values, missing, seqs


def _per_run(
    runs: list[Any],
    run_node: list[Any],
    values: dict[str, np.ndarray],
    missing: dict[str, np.ndarray],
    spec: QuerySpec,
    metric_columns: dict[str, str],
    param_names: list[str],
) -> Columns:
    """One row per kept run (the module doc's columns)."""
    n = len(runs)
    data: dict[str, np.ndarray] = {
        "case": _obj([r.case for r in runs]),
        "run": _obj([r.run for r in runs]),
        "stage": np.fromiter((nd.stage for nd in run_node), np.int64, n),
        "eco": _obj([nd.eco for nd in run_node]),
        "eco_class": _obj([nd.eco_class for nd in run_node]),
        "status": _obj([r.status for r in runs]),
        "seed": _obj([r.seed for r in runs]),
        "host": _obj([r.host for r in runs]),
        "attempt": _obj([r.attempt for r in runs]),
        "error": _obj([r.error for r in runs]),
        "started_seq": np.fromiter((r.seq for r in runs), np.int64, n),
        "finished_seq": _obj([r.finished_seq for r in runs]),
    }
    for p in param_names:
        data[f"param.{p}"] = _obj([_flat((nd.params or {}).get(p)) for nd in run_node])
    nulls = {}
    for m in spec.metrics:
        col = metric_columns[m.name]
        data[col] = values[m.name]
        nulls[col] = missing[m.name]
    return Columns(data, nulls, dict(_RUN_TYPES))


def _per_case(
    nodes: list[Any],
    run_node: list[Any],
    values: dict[str, np.ndarray],
    missing: dict[str, np.ndarray],
    seqs: dict[str, np.ndarray],
    spec: QuerySpec,
    directions: dict[str, str | None],
    metric_columns: dict[str, str],
    param_names: list[str],
    exclusions: list[Exclusion],
    left: dict[str, list[str]],
) -> Columns:
    from projections.rankings import aggregate

    index = {nd.case: i for i, nd in enumerate(nodes)}
    case_pos = np.fromiter((index[nd.case] for nd in run_node), np.int64, len(run_node))
    n_runs = np.bincount(case_pos, minlength=len(nodes))
    keep = np.flatnonzero(n_runs > 0)
    dropped = set(np.flatnonzero(n_runs == 0).tolist())
    for i in sorted(dropped):
        why = left.get(nodes[i].case)
        detail = (
            " (" + ", ".join(f"{why.count(w)} {w}" for w in sorted(set(why))) + ")"
            if why
            else " (no runs)"
        )
        exclusions.append(Exclusion(nodes[i].case, None, f"no run selected{detail}"))
    kept_nodes = [nodes[i] for i in keep.tolist()]
    data: dict[str, np.ndarray] = {
        "case": _obj([nd.case for nd in kept_nodes]),
        "stage": np.array([nd.stage for nd in kept_nodes], np.int64),
        "eco": _obj([nd.eco for nd in kept_nodes]),
        "eco_class": _obj([nd.eco_class for nd in kept_nodes]),
        "runs": n_runs[keep].astype(np.int64),
    }
    for p in param_names:
        data[f"param.{p}"] = _obj([_flat((nd.params or {}).get(p)) for nd in kept_nodes])
    nulls = {}
    for m in spec.metrics:
        has_value = ~missing[m.name]
        agg, has = aggregate(
            case_pos[has_value],
            values[m.name][has_value],
            seqs[m.name][has_value],
            len(nodes),
            m.agg or "mean",
            directions.get(m.name) or "min",
        )
        col = metric_columns[m.name]
        data[col] = agg[keep]
        nulls[col] = ~has[keep]
    return Columns(data, nulls, {k: v for k, v in _RUN_TYPES.items() if k in data})
