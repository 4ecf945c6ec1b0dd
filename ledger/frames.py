"""Frames: a stretch of the log as projections want it — the few non-metrics events as
envelopes, and every metrics event as numpy columns.

``Ledger.read_frames`` fills frames from the columns stored in each block (format 2), so
a rebuild never turns a metrics event into Python objects. Blocks without columns
(format 1, or written by hand) and plain envelope lists (``Frame.from_envelopes``) go
through the very encoder the writer uses, so both routes give equal frames.

Runs and metric names are numbered per frame in first-seen order — runs by their first
event, names by their first value — so a consumer that interns ``runs`` and ``names``
in table order interns them in log order, wherever frames begin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .columns import MetricColumns, encode_columns, parse_columns
from .events import Envelope, MetricsRecorded

__all__ = ["Frame", "FrameBuilder", "MetricRows"]

_CHUNK = 4096  # events per encoded chunk (positions are u2)


class MetricRows(NamedTuple):
    """``metrics_recorded`` events in seq order, one row per event; values flattened,
    ``lens`` of them per event."""

    seq: np.ndarray  # int64
    ts: np.ndarray  # int64, microseconds
    step: np.ndarray  # int64, -1 for a final value
    run: np.ndarray  # int32, index into ``runs``
    lens: np.ndarray  # int64
    runs: list[tuple[str, str]]  # (study, run)
    metric: np.ndarray  # int32 per value, index into ``names``
    value: np.ndarray  # float64 per value
    names: list[str]

    @property
    def count(self) -> int:  # type: ignore[override]  # shadows tuple.count(x), never used on rows
        """Events (rows); ``len()`` of a named tuple is its field count."""
        return len(self.seq)

    def value_starts(self) -> np.ndarray:
        """Index of each event's first value (and the end), for slicing values by row."""
        out = np.zeros(len(self.seq) + 1, np.int64)
        np.cumsum(self.lens, out=out[1:])
        return out


class Frame:
    """Events ``first < seq <= last``: ``other`` envelopes and ``metrics`` rows."""

    __slots__ = ("envelopes", "first", "last", "metrics", "other")

    def __init__(
        self,
        first: int,
        last: int,
        other: list[Envelope],
        metrics: MetricRows,
        envelopes: list[Envelope] | None = None,
    ) -> None:
        self.first = first
        self.last = last
        self.other = other
        self.metrics = metrics
        self.envelopes = envelopes  # every event, when the frame was built from them

    @classmethod
    def from_envelopes(cls, envs: Sequence[Envelope], first: int | None = None) -> Frame:
        builder = FrameBuilder()
        builder.add_envelopes(envs)
        lo = (envs[0].seq - 1 if envs else 0) if first is None else first
        return builder.build(lo, envs[-1].seq if envs else lo, list(envs))

    def since(self, start: int) -> Frame:
        """The part of this frame after seq ``start``."""
        if start < self.first:
            return self
        other = [e for e in self.other if e.seq > start]
        m = self.metrics
        cut = int(np.searchsorted(m.seq, start, side="right"))
        starts = m.value_starts()
        rows = _renumbered(
            MetricRows(
                m.seq[cut:],
                m.ts[cut:],
                m.step[cut:],
                m.run[cut:],
                m.lens[cut:],
                m.runs,
                m.metric[starts[cut] :],
                m.value[starts[cut] :],
                m.names,
            )
        )
        envs = None if self.envelopes is None else [e for e in self.envelopes if e.seq > start]
        return Frame(start, max(self.last, start), other, rows, envs)


class FrameBuilder:
    """Collects the parts of one frame, block by block, in seq order."""

    def __init__(self) -> None:
        self.other: list[Envelope] = []
        self._parts: list[tuple[np.ndarray, MetricColumns, np.ndarray, np.ndarray]] = []
        self._runs: dict[tuple[str, str], int] = {}
        self._names: dict[str, int] = {}

    def add_columns(
        self, cols: MetricColumns, first_seq: int, lo: int, hi: int, study: str | None
    ) -> None:
        """Rows of a block's columns at positions ``lo <= pos < hi`` (of ``study``)."""
        pos = cols.pos
        a, b = int(np.searchsorted(pos, lo)), int(np.searchsorted(pos, hi))
        if a or b < len(pos):
            starts = np.zeros(len(pos) + 1, np.int64)
            np.cumsum(cols.lens, out=starts[1:])
            cols = _take(cols, slice(a, b), slice(int(starts[a]), int(starts[b])))
        if study is not None and any(s != study for s, _ in cols.runs):
            keep_run = np.fromiter((s == study for s, _ in cols.runs), bool, len(cols.runs))
            keep = keep_run[cols.run]
            cols = _take(cols, keep, np.repeat(keep, cols.lens))
        if len(cols.pos):
            self._add(first_seq + cols.pos.astype(np.int64), cols)

    def add_envelopes(self, envs: Sequence[Envelope]) -> None:
        """Envelopes of any origin: metrics events are encoded as a block's would be."""
        seqs: list[int] = []
        times: list[int] = []
        events: list[Any] = []
        other = self.other
        for env in envs:
            ev = env.event
            if type(ev) is MetricsRecorded:
                seqs.append(env.seq)
                times.append(env.ts)
                events.append(ev)
            else:
                other.append(env)
        for start in range(0, len(events), _CHUNK):
            end = min(len(events), start + _CHUNK)
            raw = encode_columns(range(end - start), times[start:end], events[start:end])
            cols = parse_columns(raw, seqs[start], end - start)
            self._add(np.array(seqs[start:end], np.int64), cols)

    def _add(self, seq: np.ndarray, cols: MetricColumns) -> None:
        runs, names = self._runs, self._names
        run_lut = np.fromiter(
            (runs.setdefault(k, len(runs)) for k in cols.runs), np.int32, len(cols.runs)
        )
        name_lut = np.fromiter(
            (names.setdefault(k, len(names)) for k in cols.names), np.int32, len(cols.names)
        )
        self._parts.append((seq, cols, run_lut, name_lut))

    def build(self, first: int, last: int, envelopes: list[Envelope] | None = None) -> Frame:
        parts = self._parts
        if not parts:
            rows = _empty_rows()
        else:
            rows = _renumbered(
                MetricRows(
                    _cat([p[0] for p in parts], np.int64),
                    _cat([p[1].ts for p in parts], np.int64),
                    _cat([p[1].step for p in parts], np.int64),
                    _cat([p[2][p[1].run] for p in parts], np.int32),
                    _cat([p[1].lens for p in parts], np.int64),
                    list(self._runs),
                    _cat([p[3][p[1].metric] for p in parts], np.int32),
                    _cat([p[1].value for p in parts], np.float64),
                    list(self._names),
                )
            )
        return Frame(first, last, self.other, rows, envelopes)


def _take(cols: MetricColumns, rows: Any, values: Any) -> MetricColumns:
    """The events ``rows`` selects (a slice or a mask) and their values (``values``)."""
    return cols._replace(
        pos=cols.pos[rows],
        ts=cols.ts[rows],
        step=cols.step[rows],
        run=cols.run[rows],
        lens=cols.lens[rows],
        metric=cols.metric[values],
        value=cols.value[values],
    )


def _cat(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0].astype(dtype, copy=False)
    return np.concatenate(arrays).astype(dtype, copy=False)


def _empty_rows() -> MetricRows:
    i64, i32 = np.empty(0, np.int64), np.empty(0, np.int32)
    return MetricRows(i64, i64, i64, i32, i64, [], i32, np.empty(0, np.float64), [])


def _first_seen(idx: np.ndarray, table: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """``idx`` renumbered so the table lists what it uses in first-seen order (and
    nothing it does not use)."""
    if not len(idx):
        return idx, []
    top = np.maximum.accumulate(idx)
    if top[-1] == len(table) - 1 and idx[0] == 0 and bool((np.diff(top) <= 1).all()):
        return idx, table  # the usual case: already in first-seen order
    uniq, first = np.unique(idx, return_index=True)
    order = uniq[np.argsort(first, kind="stable")]
    remap = np.zeros(len(table), np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return remap[idx], [table[i] for i in order.tolist()]


def _renumbered(rows: MetricRows) -> MetricRows:
    run, runs = _first_seen(rows.run, rows.runs)
    metric, names = _first_seen(rows.metric, rows.names)
    if runs is rows.runs and names is rows.names:
        return rows
    return rows._replace(run=run, runs=runs, metric=metric, names=names)
