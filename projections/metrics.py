"""Metric series, columnar: one row per recorded value, folded a batch at a time.

A frame (``ledger.frames``) already holds a stretch of ``metrics_recorded`` events as
numpy columns, read straight from the columns each block stores: the fold maps its run
and name tables to this projection's indices and appends — no Python step per event.
Final results (no ``step``) go to their own columns, apart from stepped values, so a
ranking never touches the (large) series.

Columns are appended as chunks and concatenated lazily, on the first query. Rows stay
in log order; every query resolves supersession — a later value of the same (run,
metric, step), or of the same final (run, metric), replaces the earlier one — so both
stay in the log and in the snapshot, exactly as the log holds them.

Values are float64 (ints above 2**53 lose precision; NaN and ±inf are kept).
Runs are (study, run) pairs indexed in first-seen order, metrics by name likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np

from ledger.frames import Frame

from .base import BaseProjection, encode_state

__all__ = ["ColumnChunks", "FinalTable", "MetricsProjection", "Series", "in_force_rows"]

_COLS = ("run", "metric", "step", "value", "seq")
_WORK = {
    "run": np.int32,
    "metric": np.int32,
    "step": np.int64,
    "value": np.float64,
    "seq": np.int64,
}


class Series(NamedTuple):
    """One run's stepped values of one metric, in force, sorted by step."""

    steps: np.ndarray
    values: np.ndarray
    seqs: np.ndarray


class FinalTable(NamedTuple):
    """Final values in force: one row per (run, metric), sorted by (run, metric) index.

    ``runs`` and ``metrics`` name the indices; ``run`` and ``metric`` index them.
    """

    runs: list[str]
    metrics: list[str]
    run: np.ndarray
    metric: np.ndarray
    value: np.ndarray
    seq: np.ndarray


class ColumnChunks:
    """Column chunks, concatenated into one array per column on demand."""

    __slots__ = ("_chunks", "_rows")

    def __init__(self) -> None:
        self._chunks: list[dict[str, np.ndarray]] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, chunk: dict[str, np.ndarray]) -> None:
        n = len(chunk["value"])
        if n:
            self._chunks.append(chunk)
            self._rows += n

    def arrays(self) -> dict[str, np.ndarray]:
        if len(self._chunks) != 1:
            if not self._chunks:
                return {c: np.empty(0, _WORK[c]) for c in _COLS}
            merged = {c: np.concatenate([ch[c] for ch in self._chunks]) for c in _COLS}
            self._chunks = [merged]
        return self._chunks[0]


def in_force_rows(
    run: np.ndarray, metric: np.ndarray, step: np.ndarray, seq: np.ndarray
) -> np.ndarray:
    """Indices of the rows in force, sorted by (run, metric, step): the highest seq of
    each (run, metric, step) key. The one kernel of supersession: every projection,
    export and analysis that asks which value of a key holds calls it (``run`` and
    ``metric`` are any non-negative codes, e.g. an export's own sort order).

    Rows are stored in log order, so when ``seq`` never decreases a *stable* sort on one
    composite int64 key (run, metric, step) leaves the highest seq last among equal
    keys: about half the time of a four-key lexsort at 1M rows. Keys too wide for
    int64, or rows out of seq order, take the lexsort.
    """
    n = len(run)
    if n == 0:
        return np.empty(0, np.int64)
    s0, s1 = int(step.min()), int(step.max())
    n_metric, n_step = int(metric.max()) + 1, s1 - s0 + 1
    if (int(run.max()) + 1) * n_metric * n_step < 2**62 and bool((seq[1:] >= seq[:-1]).all()):
        key = run.astype(np.int64)  # one copy, then in place: no temporaries per term
        key *= n_metric
        key += metric
        key *= n_step
        key -= s0  # before adding the steps: no intermediate can overflow
        key += step
        order = np.argsort(key, kind="stable")
        k = key[order]
        last = np.ones(n, bool)
        last[:-1] = k[1:] != k[:-1]
        return order[last]
    order = np.lexsort((seq, step, metric, run))
    r, m, s = run[order], metric[order], step[order]
    last = np.ones(n, bool)
    last[:-1] = (r[1:] != r[:-1]) | (m[1:] != m[:-1]) | (s[1:] != s[:-1])
    return order[last]


def _pack(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Columns in the smallest fitting little-endian dtype: a smaller checkpoint reads,
    digests and restores faster."""
    out: dict[str, Any] = {}
    for name in _COLS:
        a = arrays[name]
        if name != "value" and len(a):
            lo, hi = int(a.min()), int(a.max())
            dt = np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi))
            a = a.astype(dt, copy=False)
        dt = a.dtype.newbyteorder("<")
        out[name] = [dt.str, np.ascontiguousarray(a, dtype=dt).tobytes()]
    return out


def _unpack(cols: dict[str, tuple[str, memoryview]]) -> dict[str, np.ndarray]:
    out = {}
    for name in _COLS:
        dt, raw = cols[name]
        out[name] = np.frombuffer(raw, dtype=np.dtype(dt))
    n = {len(a) for a in out.values()}
    if len(n) != 1:
        raise ValueError("metric columns of different lengths")
    return out


class _StateDict(msgspec.Struct, gc=False):
    """The snapshot's shape; columns are decoded as views into the payload (no copy)."""

    seq: int
    runs: list[tuple[str, str]]
    metrics: list[str]
    stepped: dict[str, tuple[str, memoryview]]
    finals: dict[str, tuple[str, memoryview]]


_decode_state = msgspec.msgpack.Decoder(_StateDict).decode


class _Index(dict):
    """Interns keys to 0, 1, 2... in first-seen order; ``order`` lists them."""

    def __init__(self, keys: Sequence[Any] = ()) -> None:
        super().__init__()
        self.order: list[Any] = []
        for k in keys:
            self[k]

    def __missing__(self, key: Any) -> int:
        i = self[key] = len(self.order)
        self.order.append(key)
        return i


class MetricsProjection(BaseProjection):
    """Folds ``metrics_recorded``; ignores every other event."""

    name = "metrics"
    version = 1
    FRAMES = True

    def __init__(self) -> None:
        super().__init__()
        self._runs = _Index()  # (study, run) -> index
        self._metrics = _Index()  # name -> index
        self.stepped = ColumnChunks()
        self.finals = ColumnChunks()

    # -- fold --------------------------------------------------------------------------

    def _fold_frame(self, frame: Frame) -> None:
        m = frame.metrics
        if not m.count:
            return
        # Frames list runs and names in first-seen order: interning them in table order
        # gives every run and name the index a fold from scratch would.
        run_lut = np.fromiter(map(self._runs.__getitem__, m.runs), np.int32, len(m.runs))
        name_lut = np.fromiter(map(self._metrics.__getitem__, m.names), np.int32, len(m.names))
        run_ev, step_ev, seq_ev, lens = run_lut[m.run], m.step, m.seq, m.lens
        metric, values = name_lut[m.metric], m.value
        final_ev = step_ev < 0
        if not final_ev.any():
            self._append(self.stepped, run_ev, step_ev, seq_ev, lens, metric, values)
            return
        # Finals (one event per run, usually) apart from the stepped bulk.
        final_val = np.repeat(final_ev, lens)
        for cols, ev_mask, val_mask in (
            (self.finals, final_ev, final_val),
            (self.stepped, ~final_ev, ~final_val),
        ):
            self._append(
                cols,
                run_ev[ev_mask],
                step_ev[ev_mask],
                seq_ev[ev_mask],
                lens[ev_mask],
                metric[val_mask],
                values[val_mask],
            )

    @staticmethod
    def _append(
        cols: ColumnChunks,
        run_ev: np.ndarray,
        step_ev: np.ndarray,
        seq_ev: np.ndarray,
        lens: Any,
        metric: np.ndarray,
        values: np.ndarray,
    ) -> None:
        cols.append(
            {
                "run": np.repeat(run_ev, lens),
                "metric": metric,
                "step": np.repeat(step_ev, lens),
                "value": values,
                "seq": np.repeat(seq_ev, lens),
            }
        )

    # -- snapshot ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return encode_state(
            {
                "seq": self.seq,
                "runs": [list(k) for k in self._runs.order],
                "metrics": list(self._metrics.order),
                "stepped": _pack(self.stepped.arrays()),
                "finals": _pack(self.finals.arrays()),
            }
        )

    def restore(self, data: bytes) -> None:
        raw = _decode_state(data)
        stepped = _unpack(raw.stepped)
        finals = _unpack(raw.finals)
        runs = _Index([tuple(k) for k in raw.runs])
        metrics = _Index(raw.metrics)
        n_runs, n_metrics = len(runs.order), len(metrics.order)
        for cols in (stepped, finals):
            if len(cols["run"]) and (
                int(cols["run"].max()) >= n_runs or int(cols["metric"].max()) >= n_metrics
            ):
                raise ValueError("metric columns index past the run or metric tables")
        self._runs, self._metrics = runs, metrics
        self.stepped, self.finals = ColumnChunks(), ColumnChunks()
        self.stepped.append(stepped)
        self.finals.append(finals)
        self.seq = raw.seq

    # -- queries -----------------------------------------------------------------------

    def run_keys(self) -> list[tuple[str, str]]:
        """(study, run) of every run index."""
        return list(self._runs.order)

    def metric_names(self, study: str | None = None) -> list[str]:
        """Metric names (of ``study``'s runs when given), sorted."""
        if study is None:
            return sorted(self._metrics.order)
        mask_runs = self._study_runs(study)
        used: set[int] = set()
        for cols in (self.stepped.arrays(), self.finals.arrays()):
            sel = mask_runs[cols["run"]] if len(cols["run"]) else np.zeros(0, bool)
            used.update(np.unique(cols["metric"][sel]).tolist())
        return sorted(self._metrics.order[i] for i in used)

    def _study_runs(self, study: str) -> np.ndarray:
        """Boolean mask over run indices: the runs of ``study``."""
        return np.fromiter((s == study for s, _ in self._runs.order), bool, len(self._runs.order))

    def _rows(self, cols: dict[str, np.ndarray], study: str | None) -> np.ndarray | None:
        if study is None:
            return None
        return self._study_runs(study)[cols["run"]] if len(cols["run"]) else np.zeros(0, bool)

    def final_table(self, study: str | None = None) -> FinalTable:
        """Final values in force (of ``study``'s runs when given)."""
        cols = self.finals.arrays()
        sel = self._rows(cols, study)
        c = {k: (v if sel is None else v[sel]) for k, v in cols.items()}
        keep = in_force_rows(c["run"], c["metric"], c["step"], c["seq"])
        runs = [r for _, r in self._runs.order]
        return FinalTable(
            runs,
            list(self._metrics.order),
            c["run"][keep].astype(np.int64),
            c["metric"][keep].astype(np.int64),
            c["value"][keep].astype(np.float64),
            c["seq"][keep].astype(np.int64),
        )

    def finals_of(self, study: str, run: str) -> dict[str, float]:
        """One run's final values in force, by metric name (sorted)."""
        ri = self._runs.get((study, run))
        if ri is None:
            return {}
        cols = self.finals.arrays()
        sel = cols["run"] == ri
        c = {k: v[sel] for k, v in cols.items()}
        keep = in_force_rows(c["run"], c["metric"], c["step"], c["seq"])
        names = self._metrics.order
        return dict(
            sorted((names[int(m)], float(v)) for m, v in zip(c["metric"][keep], c["value"][keep]))
        )

    def series(self, study: str, run: str, metric: str) -> Series:
        """One run's stepped values of ``metric`` in force, sorted by step."""
        ri = self._runs.get((study, run))
        mi = self._metrics.get(metric)
        if ri is None or mi is None:
            return Series(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64))
        cols = self.stepped.arrays()
        sel = np.flatnonzero((cols["run"] == ri) & (cols["metric"] == mi))
        same = np.zeros(len(sel), np.int64)  # one run, one metric
        pick = sel[in_force_rows(same, same, cols["step"][sel], cols["seq"][sel])]
        return Series(
            cols["step"][pick].astype(np.int64),
            cols["value"][pick].astype(np.float64),
            cols["seq"][pick].astype(np.int64),
        )

    def long_table(self, study: str | None = None, *, finals: bool = False) -> dict[str, Any]:
        """Values in force as columns (``run`` and ``metric`` as indices into ``runs`` and
        ``metrics``), sorted by (run index, metric index, step): stepped values, or final
        values with ``finals=True`` (step -1)."""
        cols = (self.finals if finals else self.stepped).arrays()
        sel = self._rows(cols, study)
        c = {k: (v if sel is None else v[sel]) for k, v in cols.items()}
        keep = in_force_rows(c["run"], c["metric"], c["step"], c["seq"])
        return {
            "runs": list(self._runs.order),
            "metrics": list(self._metrics.order),
            "run": c["run"][keep].astype(np.int64),
            "metric": c["metric"][keep].astype(np.int64),
            "step": c["step"][keep].astype(np.int64),
            "value": c["value"][keep].astype(np.float64),
            "seq": c["seq"][keep].astype(np.int64),
        }

    def latest(self, study: str | None = None) -> dict[str, Any]:
        """Each run's value of each stepped metric at its highest step (the one in force
        there), as ``long_table`` columns with one row per (run, metric), sorted by (run
        index, metric index).

        "The latest loss of every run" without sorting the series: one scatter-max of
        (step, seq) per (run, metric) over the rows. Wide keys, or more (run, metric)
        pairs than rows could fill, take ``long_table``'s sort instead.
        """
        cols = self.stepped.arrays()
        sel = self._rows(cols, study)
        c = {k: (v if sel is None else v[sel]) for k, v in cols.items()}
        n = len(c["run"])
        runs, names = list(self._runs.order), list(self._metrics.order)
        pick: np.ndarray
        if n == 0:
            pick = np.empty(0, np.int64)
        else:
            run = c["run"].astype(np.int64)
            group = run * len(names) + c["metric"]
            step, seq = c["step"].astype(np.int64), c["seq"].astype(np.int64)
            span = (int(step.max()) + 1) * (int(seq.max()) + 1)
            groups = len(runs) * len(names)
            if span < 2**62 and groups <= 4 * n + 1024:
                rank = step * (int(seq.max()) + 1) + seq
                best = np.full(groups, -1, np.int64)
                np.maximum.at(best, group, rank)
                pick = np.flatnonzero(rank == best[group])
                pick = pick[np.argsort(group[pick], kind="stable")]
            else:
                keep = in_force_rows(c["run"], c["metric"], c["step"], c["seq"])
                g = group[keep]
                last = np.ones(len(keep), bool)
                last[:-1] = g[1:] != g[:-1]
                pick = keep[last]
        return {
            "runs": runs,
            "metrics": names,
            "run": c["run"][pick].astype(np.int64),
            "metric": c["metric"][pick].astype(np.int64),
            "step": c["step"][pick].astype(np.int64),
            "value": c["value"][pick].astype(np.float64),
            "seq": c["seq"][pick].astype(np.int64),
        }

    def count(self) -> int:
        """Values recorded (superseded ones included)."""
        return len(self.stepped) + len(self.finals)
