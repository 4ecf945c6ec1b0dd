"""The ``cases``, ``runs`` and ``metrics`` tables of an export, built column-wise.

``collect(view, ...)`` takes a study's projections at one seq, applies ``--where`` and
redaction once, and returns :class:`ExportRecords`; the tables, ``study.json`` and the
xlsx report are all drawn from it, so they agree row for row and a secret redacted in
one is redacted in all.

Tables (typed Arrow schemas; text columns of the metrics table are dictionary-encoded,
which readers see as strings):

- ``cases``: one row per case, sorted by (stage, case): study, case, stage, depth,
  parents (a list; JSON text in CSV), eco, eco_class, created_seq, created_ts, then one
  ``param.<name>`` column per top-level param name (sorted). A param column takes
  the narrowest type its values share — bool, int64, float64 (ints and floats mixed)
  or string — and JSON text when they do not share one or are lists/objects. Flat
  columns are what a spreadsheet, DuckDB or pandas filters on; the params as they were
  recorded, nested values included, are in ``study.json``.
- ``runs``: one row per run, sorted by (case, run): study, case, run, stage, status
  (null while the run is open), attempt, seed, host, pid, started_ts, finished_ts
  (``timestamp[us, UTC]``), wall_s, cpu_s, error, invalidated, invalidated_reason,
  started_seq, finished_seq, artifacts (their count).
- ``metrics``: long form, one row per (run, metric, step) value in force — a later
  value of the same key supersedes an earlier one — sorted by (case, run, metric,
  step, seq), a run's final value (step null) after its series: study, case, run,
  stage, metric, step (a nullable int64: null for a final value), value (float64;
  NaN and ±inf kept), seq (of the event that recorded the value in force), ts (that
  event's time, ``timestamp[us, UTC]``; RFC 3339 UTC with microseconds in CSV).

The metrics table is built from the metrics projection's raw numpy columns (every
recorded value, in log order): one stable sort by (run, metric, step) — a single int64
key when the steps allow — keeps the last value of each key, which is the one in force,
then ``take``; the Arrow columns are zero-copy views of the results. Each value's time
is its event's, looked up by seq in the (seq, ts) columns of the study's
``metrics_recorded`` events (the blocks store them, so no event is decoded), taken by
``EventTimes`` from the very frames the projections are folded from (one read of the
log; ``ledger_event_times`` reads them on its own). No Python object per value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import numpy as np

from ledger.numbers import is_number
from projections.export.safety import redact_for_export, redaction_report
from projections.export.select import Where

if TYPE_CHECKING:
    import pyarrow as pa

    from ledger import Ledger
    from ledger.frames import Frame
    from projections.dag import CaseNode
    from projections.rankings import Policy, Ranking
    from projections.runs import RunInfo
    from projections.study import StudyView

__all__ = [
    "CASES_COLUMNS",
    "METRICS_COLUMNS",
    "RUNS_COLUMNS",
    "EventTimes",
    "ExportRecords",
    "Redactor",
    "StudyRankings",
    "cases_table",
    "collect",
    "csv_ready",
    "metric_columns",
    "metrics_table",
    "metrics_table_of",
    "run_state",
    "runs_table",
]

CASES_COLUMNS = (
    "study",
    "case",
    "stage",
    "depth",
    "parents",
    "eco",
    "eco_class",
    "created_seq",
    "created_ts",
)
RUNS_COLUMNS = (
    "study",
    "case",
    "run",
    "stage",
    "status",
    "attempt",
    "seed",
    "host",
    "pid",
    "started_ts",
    "finished_ts",
    "wall_s",
    "cpu_s",
    "error",
    "invalidated",
    "invalidated_reason",
    "started_seq",
    "finished_seq",
    "artifacts",
)
METRICS_COLUMNS = ("study", "case", "run", "stage", "metric", "step", "value", "seq", "ts")
PARAM_PREFIX = "param."


def _json_path(prefix: str, key: str) -> str:
    return f"{prefix}[{json.dumps(key, ensure_ascii=False)}]"


class Redactor:
    """Redaction with one set of rules over every part of an export; collects the paths
    for the manifest."""

    def __init__(self, enabled: bool = True, patterns: Sequence[str] = ()) -> None:
        self.enabled = enabled
        self.patterns = tuple(patterns)
        self.paths: set[str] = set()

    def __call__(self, obj: Any, root: str) -> Any:
        if not self.enabled or obj is None:
            return obj
        out, found = redact_for_export(obj, self.patterns, True, root=root)
        self.paths.update(found)
        return out

    def report(self) -> dict[str, Any]:
        return redaction_report(sorted(self.paths), self.patterns, self.enabled)


class StudyRankings(NamedTuple):
    policy: Policy | None  # None: the study declares no objectives
    overall: Ranking | None
    by_stage: list[Ranking]  # one per stage, ascending


def run_state(info: RunInfo) -> str:
    """What ``--where status=...`` matches: ``invalidated``, the status, or ``running``."""
    if info.invalidated is not None:
        return "invalidated"
    return info.status or "running"


@dataclass
class ExportRecords:
    """One study at one seq, selected by ``--where`` and redacted: what every file of
    the export is drawn from. Lists are in export order."""

    view: StudyView
    where: Where
    info: dict[str, Any]  # config, description, tags — redacted
    cases: list[CaseNode]  # sorted (stage, case)
    params: list[dict[str, Any] | None]  # per case, redacted
    runs: list[RunInfo]  # sorted (case, run)
    run_fields: list[dict[str, Any]]  # per run: host, error, config, ... — redacted
    stage_of: dict[str, int]  # every case of the study -> stage
    metrics: dict[str, Any]  # the metric columns, selected and sorted
    selections: list[dict[str, Any]]  # redacted policies
    redactor: Redactor = field(repr=False, default_factory=Redactor)
    _rankings: StudyRankings | None = field(default=None, repr=False)

    @property
    def study(self) -> str:
        return self.view.study

    @property
    def as_of(self) -> int:
        return self.view.as_of

    def rankings(self) -> StudyRankings:
        """The study's ranking under its objectives: all cases, and stage by stage
        (computed once; the report and ``study.json`` share it). Rankings always cover
        the whole study at ``as_of``: ``--where`` selects rows, not what is ranked."""
        if self._rankings is None:
            view = self.view
            if not view.objectives:
                self._rankings = StudyRankings(None, None, [])
            else:
                policy = view.policy()
                self._rankings = StudyRankings(
                    policy,
                    view.rank(None, policy),
                    [view.rank(s, policy) for s in view.dag.stages()],
                )
        return self._rankings


def collect(
    view: StudyView,
    *,
    where: Where | None = None,
    redactor: Redactor | None = None,
    event_times: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> ExportRecords:
    """Select and redact a study's records once, for every file of the export.

    ``event_times`` returns the (seq, ts) of the study's ``metrics_recorded`` events in
    seq order (the metrics projection keeps seqs, not times): it gives the metrics
    table its ``ts`` column and serves ``--where ts...``. Without it, ``ts`` is null.
    """
    where = where or Where()
    redactor = redactor or Redactor()
    dag = view.dag
    info = dag.info
    study_info = redactor(
        {
            "config": info.config if info else None,
            "description": info.description if info else None,
            "tags": list(info.tags) if info and info.tags is not None else None,
        },
        "$",
    )
    stage_of, in_scope = _scope(view, where)
    cases = [n for n in dag.cases() if n.case in in_scope]
    if where.has_ts:
        created = where.ts_mask(np.fromiter((n.ts for n in cases), np.int64, len(cases)))
        cases = [n for n, keep in zip(cases, created.tolist()) if keep]
    params = [redactor(n.params, _json_path("$.cases", n.case) + ".params") for n in cases]

    runs = [
        r
        for r in view.runs.sorted()
        if r.case in in_scope
        and where.run_in_scope(run_state(r))
        and (not where.has_ts or where.overlaps(r.ts, max(r.ts, r.last_ts)))
    ]
    run_fields = [
        redactor(
            {
                "host": r.host,
                "error": r.error,
                "config": r.config,
                "provenance": r.provenance,
                "resources": r.resources,
                "artifacts": [
                    {
                        "name": a.name,
                        "uri": a.uri,
                        "sha256": a.sha256,
                        "bytes": a.bytes,
                        "media_type": a.media_type,
                        "seq": a.seq,
                    }
                    for a in r.artifacts
                ],
            },
            _json_path("$.runs", r.run),
        )
        for r in runs
    ]
    metrics = _metric_columns(
        view, _metric_runs(view, in_scope, where), stage_of, where, event_times
    )
    selections = [
        dict(s.to_dict(), policy=redactor(s.policy, f"$.selections[{i}].policy"))
        for i, s in enumerate(view.selections)
    ]
    return ExportRecords(
        view=view,
        where=where,
        info=study_info,
        cases=cases,
        params=params,
        runs=runs,
        run_fields=run_fields,
        stage_of=stage_of,
        metrics=metrics,
        selections=selections,
        redactor=redactor,
    )


def _scope(view: StudyView, where: Where) -> tuple[dict[str, int], set[str]]:
    """Every case's stage, and the cases ``--where`` keeps."""
    nodes = view.dag.nodes
    stage_of = {case: node.stage for case, node in nodes.items()}
    in_scope = {
        n.case for n in nodes.values() if where.case_in_scope(n.case, n.stage, n.eco, n.eco_class)
    }
    return stage_of, in_scope


def _metric_runs(view: StudyView, in_scope: set[str], where: Where) -> set[str]:
    """The runs whose values the metrics table keeps."""
    return {
        r.run
        for r in view.runs.runs.values()
        if r.case in in_scope and where.run_in_scope(run_state(r))
    }


# ----------------------------------------------------------------------------- metrics


def metric_columns(
    view: StudyView,
    *,
    where: Where | None = None,
    event_times: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """What ``collect`` puts in ``ExportRecords.metrics``, without the rest: for a caller
    that builds the metrics table alone (``ledger sql`` on ``metrics``), which then pays
    for neither the cases' nor the runs' redaction (a pattern match per key of every
    run's config, ~25 ms at 200 runs). The same columns as ``collect``'s."""
    where = where or Where()
    stage_of, in_scope = _scope(view, where)
    return _metric_columns(view, _metric_runs(view, in_scope, where), stage_of, where, event_times)


class EventTimes:
    """The (seq, ts) of each study's ``metrics_recorded`` events, gathered from the frames
    a build reads (``build_many(on_frame=...)``): the metrics table's ``ts`` then costs no
    second read of the log, as ``ledger_event_times`` does. The frames must come from
    seq 0, in seq order; ``of(study)`` equals ``ledger_event_times`` at the same seq."""

    def __init__(self) -> None:
        self._parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(self, frame: Frame) -> None:
        m = frame.metrics
        if not len(m.seq):
            return
        studies = sorted({study for study, _ in m.runs})
        if len(studies) == 1:  # a one-study read, or a stretch of one study
            self._parts.setdefault(studies[0], []).append((m.seq, m.ts))
            return
        code = {study: i for i, study in enumerate(studies)}
        study_of_row = np.array([code[study] for study, _ in m.runs], np.int32)[m.run]
        for i, study in enumerate(studies):
            keep = study_of_row == i
            if keep.any():
                self._parts.setdefault(study, []).append((m.seq[keep], m.ts[keep]))

    def of(self, study: str) -> tuple[np.ndarray, np.ndarray]:
        parts = self._parts.get(study)
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _metric_columns(
    view: StudyView,
    keep_runs: set[str],
    stage_of: dict[str, int],
    where: Where,
    event_times: Callable[[], tuple[np.ndarray, np.ndarray]] | None,
) -> dict[str, Any]:
    """The values in force of the kept runs, as numpy columns in export order.

    Returns run/metric/case codes into sorted name lists (``runs``, ``metrics``,
    ``cases``), plus step (−1 for finals), value, seq, ts, stage and the ``final`` mask.

    Reads the metrics projection's raw columns (every recorded value, in log order) and
    resolves supersession and the export order with one stable sort per part (the
    kernel every projection uses, :func:`projections.metrics.in_force_rows`, on export
    codes), so the only large allocations are the sort's index and the output columns.
    """
    codes = _RunCodes.of(view, keep_runs, stage_of)
    times = event_times() if event_times is not None else None
    proj = view.metrics
    parts = [
        _kept_rows(raw, codes.run_code, where, times)
        for raw in (proj.stepped.arrays(), proj.finals.arrays())
    ]
    metrics, metric_code = _metric_codes(parts, view.final_table().metrics)
    n_metrics = max(len(metrics), 1)
    (s_raw, s_sel), (f_raw, f_sel) = parts
    s_idx, s_group = _in_force_part(s_raw, s_sel, codes.run_code, metric_code, n_metrics)
    f_idx, f_group = _in_force_part(f_raw, f_sel, codes.run_code, metric_code, n_metrics)
    # A run's final value of a metric goes after that metric's series.
    at = np.searchsorted(s_group, f_group, side="right")

    def column(name: str, dtype: Any, lookup: np.ndarray | None = None) -> np.ndarray:
        stepped = s_raw[name].take(s_idx)
        finals = f_raw[name].take(f_idx)
        if lookup is not None:
            stepped, finals = lookup[stepped], lookup[finals]
        return np.insert(stepped.astype(dtype, copy=False), at, finals.astype(dtype, copy=False))

    run = column("run", np.int32, codes.run_code)
    seq = column("seq", np.int64)
    return {
        "runs": codes.runs,
        "cases": codes.cases,
        "metrics": metrics,
        "run": run,
        "case": codes.run_case[run] if len(codes.run_case) else np.zeros(len(run), np.int32),
        "metric": column("metric", np.int32, metric_code),
        "stage": codes.run_stage[run] if len(codes.run_stage) else np.zeros(len(run), np.int64),
        "step": column("step", np.int64),
        "final": np.insert(np.zeros(len(s_idx), bool), at, np.ones(len(f_idx), bool)),
        "value": column("value", np.float64),
        "seq": seq,
        "ts": None if times is None else _times_of(seq, *times),
    }


class _RunCodes(NamedTuple):
    """The kept runs in export order (by case, then run) and what each code maps to."""

    run_code: np.ndarray  # projection run index -> export code, -1: not kept (+1 slot)
    runs: list[str]  # export code -> run id
    cases: list[str]  # sorted case ids of the kept runs
    run_case: np.ndarray  # export code -> case code
    run_stage: np.ndarray  # export code -> stage

    @classmethod
    def of(cls, view: StudyView, keep_runs: set[str], stage_of: dict[str, int]) -> _RunCodes:
        run_keys = view.metrics.run_keys()  # (study, run) per run index
        case_of_run = {r.run: r.case for r in view.runs.runs.values()}
        kept_idx = [
            i
            for i, (study, run) in enumerate(run_keys)
            if study == view.study and run in keep_runs and run in case_of_run
        ]
        kept_idx.sort(key=lambda i: (case_of_run[run_keys[i][1]], run_keys[i][1]))
        run_code = np.full(len(run_keys) + 1, -1, np.int64)  # +1: never empty
        run_code[kept_idx] = np.arange(len(kept_idx))
        runs = [run_keys[i][1] for i in kept_idx]
        cases = sorted({case_of_run[r] for r in runs})
        case_code_of = {c: i for i, c in enumerate(cases)}
        return cls(
            run_code,
            runs,
            cases,
            np.array([case_code_of[case_of_run[r]] for r in runs], np.int32),
            np.array([stage_of.get(case_of_run[r], 0) for r in runs], np.int64),
        )


def _kept_rows(
    raw: dict[str, np.ndarray],
    run_code: np.ndarray,
    where: Where,
    times: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The raw rows of kept runs (and, with ``--where ts``, of events in the window):
    ``(raw, None)`` when every row is kept, else ``(raw, their indices)``."""
    keep = run_code[raw["run"]] >= 0
    if times is not None and where.has_ts and len(keep):
        seqs, ts = times
        pos = np.searchsorted(seqs, raw["seq"]).clip(0, max(len(seqs) - 1, 0))
        keep &= where.ts_mask(ts[pos]) if len(ts) else False
    return raw, None if keep.all() else np.flatnonzero(keep)


def _metric_codes(
    parts: Sequence[tuple[dict[str, np.ndarray], np.ndarray | None]], metric_names: list[str]
) -> tuple[list[str], np.ndarray]:
    """The metric names the kept rows use, in code-point order, and the map from the
    projection's metric index to that order (-1: unused)."""
    used = np.zeros(len(metric_names) + 1, bool)
    for raw, sel in parts:
        m = raw["metric"] if sel is None else raw["metric"][sel]
        used[: len(metric_names)] |= np.bincount(m, minlength=len(metric_names)) > 0
    metrics = sorted(metric_names[i] for i in np.flatnonzero(used))
    metric_code = np.full(len(metric_names) + 1, -1, np.int64)
    code_of = {name: i for i, name in enumerate(metrics)}
    for i, name in enumerate(metric_names):
        if name in code_of:
            metric_code[i] = code_of[name]
    return metrics, metric_code


def _in_force_part(
    raw: dict[str, np.ndarray],
    sel: np.ndarray | None,
    run_code: np.ndarray,
    metric_code: np.ndarray,
    n_metrics: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows in force of one part (stepped or finals) in export order — raw indices —
    and each row's (run code, metric code) group number."""
    from projections.metrics import in_force_rows

    def rows(name: str) -> np.ndarray:
        return raw[name] if sel is None else raw[name].take(sel)

    run = run_code[rows("run")]
    metric = metric_code[rows("metric")]
    order = in_force_rows(run, metric, rows("step"), rows("seq"))
    return (order if sel is None else sel[order]), run[order] * n_metrics + metric[order]


def _times_of(seq: np.ndarray, event_seqs: np.ndarray, event_ts: np.ndarray) -> np.ndarray:
    """The time of the event behind each value (by its seq).

    A table indexed by seq when the study's events are dense enough in the log (a
    study's own ledger, or one of a few: a gather, ~2 ms at 10^6 values), else a binary
    search (~20 ms, but no table as long as the log for a study of a few events)."""
    if not len(seq):
        return np.empty(0, np.int64)
    if not len(event_seqs):
        _missing_time()
    lo = int(event_seqs[0])
    span = int(event_seqs[-1]) - lo + 1
    if span > 4 * len(event_seqs) + 65536:
        pos = np.searchsorted(event_seqs, seq).clip(0, len(event_seqs) - 1)
        if not bool((event_seqs[pos] == seq).all()):
            _missing_time()
        return np.ascontiguousarray(event_ts[pos], np.int64)
    idx = seq - lo
    if int(idx.min()) < 0 or int(idx.max()) >= span:
        _missing_time()
    dense = np.zeros(span, np.int64)
    present = np.zeros(span, bool)
    dense[event_seqs - lo] = event_ts
    present[event_seqs - lo] = True
    if not bool(present[idx].all()):
        _missing_time()
    return dense[idx]


def _missing_time() -> NoReturn:
    from projections.base import ProjectionError

    raise ProjectionError(
        "a metric value's event is missing from the study's event times; "
        "were the times read at the same as-of seq as the study?"
    )


def _dictionary(codes: np.ndarray, names: Sequence[str]) -> pa.DictionaryArray:
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(
        pa.array(codes, pa.int32()), pa.array(list(names), pa.string())
    )


def metrics_table(rec: ExportRecords) -> pa.Table:
    """The long-form metrics table (see the module doc)."""
    return metrics_table_of(rec.study, rec.metrics)


def metrics_table_of(study: str, m: dict[str, Any]) -> pa.Table:
    """The metrics table of ``study`` from its ``metric_columns``."""
    import pyarrow as pa

    n = len(m["value"])
    step = pa.array(m["step"], pa.int64(), mask=m["final"]) if n else pa.array([], pa.int64())
    return pa.table(
        {
            "study": _dictionary(np.zeros(n, np.int32), [study]),
            "case": _dictionary(m["case"], m["cases"]),
            "run": _dictionary(m["run"], m["runs"]),
            "stage": pa.array(m["stage"], pa.int64()),
            "metric": _dictionary(m["metric"], m["metrics"]),
            "step": step,
            "value": pa.array(m["value"], pa.float64()),
            "seq": pa.array(m["seq"], pa.int64()),
            "ts": pa.array(m["ts"], _ts_type()) if m["ts"] is not None else pa.nulls(n, _ts_type()),
        },
        schema=METRICS_SCHEMA(),
    )


def METRICS_SCHEMA() -> pa.Schema:  # noqa: N802 - a constant that needs pyarrow
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            pa.field("study", text, nullable=False),
            pa.field("case", text, nullable=False),
            pa.field("run", text, nullable=False),
            pa.field("stage", pa.int64(), nullable=False),
            pa.field("metric", text, nullable=False),
            pa.field("step", pa.int64()),
            pa.field("value", pa.float64(), nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("ts", _ts_type()),
        ]
    )


# ------------------------------------------------------------------------ cases, runs


def _ts_type() -> pa.DataType:
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC")


def _ints(values: list[Any]) -> pa.Array:
    """int64, or text when a value does not fit (a seed past 2**63)."""
    import pyarrow as pa

    try:
        return pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _param_column(values: list[Any]) -> pa.Array:
    """The narrowest type the values share (see the module doc)."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds <= {bool}:
        return pa.array(values, pa.bool_()) if present else pa.array(values, pa.null())
    if kinds <= {int}:
        try:
            return pa.array(values, pa.int64())
        except (OverflowError, pa.ArrowInvalid):
            pass
    elif kinds <= {int, float} and all(abs(v) < 2**53 for v in present if isinstance(v, int)):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kinds <= {str}:
        return pa.array(values, pa.string())
    return pa.array([None if v is None else _json_text(v) for v in values], pa.string())


def _json_text(value: Any) -> str:
    """Compact canonical JSON (sorted keys, the non-finite spellings of docs/architecture.md, Events)."""
    import msgspec

    from projections.export.json_writer import to_jsonable

    return msgspec.json.encode(to_jsonable(value), order="sorted").decode()


def cases_table(rec: ExportRecords) -> pa.Table:
    """The cases table (see the module doc)."""
    import pyarrow as pa

    cases = rec.cases
    columns: dict[str, pa.Array] = {
        "study": pa.array([rec.study] * len(cases), pa.string()),
        "case": pa.array([n.case for n in cases], pa.string()),
        "stage": pa.array([n.stage for n in cases], pa.int64()),
        "depth": pa.array([n.depth for n in cases], pa.int64()),
        "parents": pa.array([list(n.parents) for n in cases], pa.list_(pa.string())),
        "eco": pa.array([n.eco for n in cases], pa.string()),
        "eco_class": pa.array([n.eco_class for n in cases], pa.string()),
        "created_seq": pa.array([n.seq for n in cases], pa.int64()),
        "created_ts": pa.array([n.ts for n in cases], _ts_type()),
    }
    names = sorted({k for p in rec.params if p for k in p})
    for name in names:
        values = [p.get(name) if p else None for p in rec.params]
        columns[PARAM_PREFIX + name] = _param_column(values)
    nullable = {"eco", "eco_class"} | {PARAM_PREFIX + n for n in names}
    schema = pa.schema([pa.field(k, v.type, nullable=k in nullable) for k, v in columns.items()])
    return pa.table(columns, schema=schema)


def _number(d: dict[str, Any] | None, key: str) -> float | None:
    """``d[key]`` as a float when it is a number (a resource reading), else None."""
    v = (d or {}).get(key)
    return float(v) if is_number(v) else None


def runs_table(rec: ExportRecords) -> pa.Table:
    """The runs table (see the module doc)."""
    import pyarrow as pa

    runs, extra = rec.runs, rec.run_fields
    ts = _ts_type()
    columns: dict[str, pa.Array] = {
        "study": pa.array([rec.study] * len(runs), pa.string()),
        "case": pa.array([r.case for r in runs], pa.string()),
        "run": pa.array([r.run for r in runs], pa.string()),
        "stage": pa.array([rec.stage_of.get(r.case) for r in runs], pa.int64()),
        "status": pa.array([r.status for r in runs], pa.string()),
        "attempt": _ints([r.attempt for r in runs]),
        "seed": _ints([r.seed for r in runs]),
        "host": pa.array([_text(e["host"]) for e in extra], pa.string()),
        "pid": _ints([r.pid for r in runs]),
        "started_ts": pa.array([r.ts for r in runs], ts),
        "finished_ts": pa.array([r.finished_ts for r in runs], ts),
        "wall_s": pa.array([_wall(r, e) for r, e in zip(runs, extra)], pa.float64()),
        "cpu_s": pa.array([_number(e["resources"], "cpu_s") for e in extra], pa.float64()),
        "error": pa.array([_text(e["error"]) for e in extra], pa.string()),
        "invalidated": pa.array([r.invalidated is not None for r in runs], pa.bool_()),
        "invalidated_reason": pa.array([r.invalidated for r in runs], pa.string()),
        "started_seq": pa.array([r.seq for r in runs], pa.int64()),
        "finished_seq": pa.array([r.finished_seq for r in runs], pa.int64()),
        "artifacts": pa.array([len(r.artifacts) for r in runs], pa.int64()),
    }
    required = {"study", "case", "run", "started_ts", "invalidated", "started_seq", "artifacts"}
    schema = pa.schema(
        [pa.field(k, v.type, nullable=k not in required) for k, v in columns.items()]
    )
    return pa.table(columns, schema=schema)


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _wall(run: RunInfo, extra: dict[str, Any]) -> float | None:
    """The run's own ``resources.wall_s`` (redaction respected), else finish − start."""
    reported = _number(extra["resources"], "wall_s")
    if reported is not None:
        return reported
    if run.finished_ts is None:
        return None
    return (run.finished_ts - run.ts) / 1e6


# ---------------------------------------------------------------------------- for CSV


def csv_ready(table: pa.Table) -> pa.Table:
    """List columns (``parents``) as compact JSON text, which CSV and xlsx can hold."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            text = pa.array(
                [None if v is None else _json_text(v) for v in table.column(i).to_pylist()],
                pa.string(),
            )
            table = table.set_column(i, pa.field(f.name, pa.string(), f.nullable), text)
    return table


def ledger_event_times(ledger: Ledger, study: str, as_of: int) -> tuple[np.ndarray, np.ndarray]:
    """(seq, ts) of a study's ``metrics_recorded`` events up to ``as_of``, in seq order.

    An adapter: the metrics projection keeps each value's seq but not its time, which
    ``--where ts...`` needs. One read of the study's frames: the times are a column the
    blocks store, so no metrics event is decoded.
    """
    seqs: list[np.ndarray] = []
    times: list[np.ndarray] = []
    for frame in ledger.read_frames(0, as_of, study=study):
        seqs.append(frame.metrics.seq)
        times.append(frame.metrics.ts)
    if not seqs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(seqs), np.concatenate(times)
