"""Metric columns: a block's ``metrics_recorded`` events stored again as flat arrays.

A rebuild spends most of its time turning stored metrics events into Python objects only
to flatten them into numpy columns. So each block written since format 2 carries those
columns beside the events: a reader maps them with ``numpy.frombuffer`` and decodes
only the few other events. The events stay the record — the chain covers them, not the
columns — and ``verify`` re-derives every block's columns from its events and compares
the bytes, so columns that disagree with the log are caught like a bad hash.

Encoding uses ``array`` (C loops, and it keeps ``import ledger`` free of numpy); only
``parse_columns`` needs numpy and imports it when first called.

Tables are in first-seen order — runs by their first event, metric names by their first
value — so interning them in table order interns them in log order.

Layout (msgpack array, little-endian arrays):
    pos     u2 per event    index of the event inside its block
    ts      i8 per event    microseconds
    step    i8 per event    -1 for a final value; steps past 2**63-1 read as 2**63-1
    run     u2 per event    index into ``runs``
    lens    u4 per event    values per event
    metric  u2|u4 per value index into ``names`` (u4 when ``wide``)
    value   f8 per value    ints become float64
    runs    [[study, run], ...]
    names   [name, ...]
    wide    bool
"""

from __future__ import annotations

import operator
import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import msgspec

from .errors import CorruptionError

__all__ = ["MetricColumns", "encode_columns", "parse_columns"]

_I64_MAX = 2**63 - 1
_study_run = attrgetter("study", "run")
_values_of = attrgetter("values")
_step_of = attrgetter("step")
_first, _second = itemgetter(0), itemgetter(1)


def _call_each(funcs: Any, args: Sequence[Any]) -> Any:
    """``f(a)`` for each pair, in C where the interpreter offers it (3.11+)."""
    if _CALL is not None:
        return map(_CALL, funcs, args)
    return [f(a) for f, a in zip(funcs, args)]


_CALL = getattr(operator, "call", None)
_SWAP = sys.byteorder != "little"


class _Stored(msgspec.Struct, array_like=True, gc=False):
    pos: bytes
    ts: bytes
    step: bytes
    run: bytes
    lens: bytes
    metric: bytes
    value: bytes
    runs: list[tuple[str, str]]
    names: list[str]
    wide: bool = False


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Stored).decode


def _raw(a: array) -> bytes:
    if _SWAP:  # pragma: no cover - no big-endian CI machine
        a.byteswap()
    return a.tobytes()


def _steps(events: Sequence[Any]) -> array:
    steps = [-1 if s is None else s for s in map(_step_of, events)]
    try:
        return array("q", steps)
    except OverflowError:
        return array("q", [min(s, _I64_MAX) for s in steps])


class _Plans(dict):
    """Per key set (a dict's keys in insertion order): a getter of its values in sorted
    key order and their name indices. Stored events hold their values key-sorted
    (canonical msgpack), so columns built from a client's dicts at append and from
    decoded events on read list the same values in the same order; and runs of events
    log the same names again and again, so each set is sorted once."""

    def __init__(self, names: dict[str, int]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, keys: tuple[str, ...]) -> tuple[Any, list[int]]:
        ordered = sorted(keys)
        names = self.names
        idx = [names.setdefault(n, len(names)) for n in ordered]
        get: Callable[[dict[str, Any]], tuple[Any, ...]]
        if len(ordered) > 1:
            get = itemgetter(*ordered)
        elif ordered:
            name = ordered[0]

            def get(d: dict[str, Any]) -> tuple[Any, ...]:
                return (d[name],)
        else:

            def get(d: dict[str, Any]) -> tuple[Any, ...]:
                return ()

        plan = self[keys] = (get, idx)
        return plan


def encode_columns(pos: Sequence[int], ts: Sequence[int], events: Sequence[Any]) -> bytes:
    """The columns of ``events`` (metrics_recorded structs) at block positions ``pos``
    with stored times ``ts``; empty bytes for no events.

    This runs inside the write transaction for every appended metrics event, so the
    per-event work is ``map`` and list building in C; a batch whose events all log the
    same names (the usual case) repeats one name-index array instead of building one
    per event.
    """
    if not events:
        return b""
    keys = list(map(_study_run, events))
    runs = dict(zip(dict.fromkeys(keys), range(len(keys))))  # first-seen order
    run = array("H", map(runs.__getitem__, keys))
    dicts = list(map(_values_of, events))
    names: dict[str, int] = {}
    plans = _Plans(names)
    plan = list(map(plans.__getitem__, map(tuple, dicts)))
    code = "I" if len(names) > 0xFFFF else "H"
    if len(plans) == 1:
        get, idx = plan[0]
        lens = array("I", [len(idx)]) * len(dicts)
        metric = array(code, idx) * len(dicts)
        flat = list(chain.from_iterable(map(get, dicts)))
    else:
        lens = array("I", map(len, map(_second, plan)))
        metric = array(code, list(chain.from_iterable(map(_second, plan))))
        flat = list(chain.from_iterable(_call_each(map(_first, plan), dicts)))
    return _encode(
        _Stored(
            _raw(array("H", pos)),
            _raw(array("q", ts)),
            _raw(_steps(events)),
            _raw(run),
            _raw(lens),
            _raw(metric),
            _raw(array("d", flat)),
            list(runs),
            list(names),
            code == "I",
        )
    )


class MetricColumns(NamedTuple):
    """One block's columns as numpy views (``seq`` filled in by the reader)."""

    pos: Any
    ts: Any
    step: Any
    run: Any
    lens: Any
    metric: Any
    value: Any
    runs: list[tuple[str, str]]
    names: list[str]


def parse_columns(buf: bytes | memoryview, first_seq: int, count: int) -> MetricColumns:
    """Map stored columns without copying; ``CorruptionError`` (naming the block's first
    seq) when they do not hold together."""
    import numpy as np

    try:
        c = _decode(buf)
        cols = MetricColumns(
            np.frombuffer(c.pos, "<u2"),
            np.frombuffer(c.ts, "<i8"),
            np.frombuffer(c.step, "<i8"),
            np.frombuffer(c.run, "<u2"),
            np.frombuffer(c.lens, "<u4"),
            np.frombuffer(c.metric, "<u4" if c.wide else "<u2"),
            np.frombuffer(c.value, "<f8"),
            c.runs,
            c.names,
        )
    except (msgspec.DecodeError, ValueError) as exc:
        raise CorruptionError(
            f"corrupt at seq {first_seq}: metric columns do not decode ({exc})", seq=first_seq
        ) from None
    m = len(cols.pos)
    ok = (
        len(cols.ts) == len(cols.step) == len(cols.run) == len(cols.lens) == m
        and len(cols.metric) == len(cols.value) == int(cols.lens.sum(dtype=np.int64))
        and (m == 0 or (int(cols.pos[-1]) < count and bool((cols.pos[1:] > cols.pos[:-1]).all())))
        and (m == 0 or int(cols.run.max()) < len(cols.runs))
        and (len(cols.metric) == 0 or int(cols.metric.max()) < len(cols.names))
    )
    if not ok:
        raise CorruptionError(
            f"corrupt at seq {first_seq}: metric columns do not hold together", seq=first_seq
        )
    return cols
