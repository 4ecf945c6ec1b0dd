"""``metrics._in_force`` (which values are in force): the one-key stable sort agrees
with the four-key lexsort it replaces, and falls back to it when it cannot hold."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.metrics import in_force_rows as _in_force


def _reference(run, metric, step, seq) -> np.ndarray:
    order = np.lexsort((seq, step, metric, run))
    keys = list(zip(run[order].tolist(), metric[order].tolist(), step[order].tolist()))
    return np.array(
        [i for j, i in enumerate(order) if j + 1 == len(keys) or keys[j] != keys[j + 1]], np.int64
    )


rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(-1, 6)), min_size=0, max_size=80
)


@settings(max_examples=200, deadline=None)
@given(rows, st.booleans())
def test_agrees_with_the_lexsort(data, shuffle_seqs) -> None:
    run = np.array([r for r, _, _ in data], np.int32)
    metric = np.array([m for _, m, _ in data], np.int32)
    step = np.array([s for _, _, s in data], np.int64)
    seq = np.arange(1, len(data) + 1, dtype=np.int64) // 2 * 3  # log order, some ties
    if shuffle_seqs and len(data) > 1:
        seq = seq[::-1].copy()  # out of log order: the lexsort path
    got = _in_force(run, metric, step, seq)
    assert got.tolist() == _reference(run, metric, step, seq).tolist()


def test_supersession_keeps_the_last_row_and_huge_steps_fall_back() -> None:
    run = np.array([0, 0, 1, 0], np.int32)
    metric = np.array([0, 0, 0, 0], np.int32)
    seq = np.array([1, 2, 3, 4], np.int64)
    step = np.array([5, 5, 0, 5], np.int64)
    assert _in_force(run, metric, step, seq).tolist() == [3, 2]
    huge = np.array([2**62, 2**62, 0, 2**62], np.int64)  # the key would overflow int64
    assert _in_force(run, metric, huge, seq).tolist() == [3, 2]
    assert _in_force(run[:0], metric[:0], step[:0], seq[:0]).size == 0


def test_latest_is_the_highest_step_in_force_per_run_and_metric(ledger) -> None:
    from proj_streams import Stream

    from projections.base import build
    from projections.metrics import MetricsProjection

    s = Stream("sw").created()
    s.case("c").start("c", "r1").start("c", "r2")
    s.log("r1", {"loss": 1.0, "acc": 0.1}, step=0)
    s.log("r1", {"loss": 0.5}, step=3)
    s.log("r1", {"loss": 0.7}, step=1)  # logged late, a lower step: not the latest
    s.log("r1", {"loss": 0.4}, step=3)  # supersedes loss@3
    s.log("r2", {"loss": 9.0}, step=2**60)  # a huge step: the sort fallback
    s.log("r1", {"loss": 0.3})  # a final value, not a stepped one
    other = Stream("other").created()
    other.case("c").start("c", "r1").log("r1", {"loss": 5.0}, step=9)
    other.log("r1", {"loss": 6.0}, step=4).log("r1", {"loss": 4.0}, step=9)  # supersedes
    ledger.append(s.events + other.events)
    m = build(ledger, MetricsProjection())

    def rows(t):
        return [
            (t["runs"][r], t["metrics"][k], st, v, q)
            for r, k, st, v, q in zip(t["run"], t["metric"], t["step"], t["value"], t["seq"])
        ]

    want = [
        (("sw", "r1"), "acc", 0, 0.1, 5),
        (("sw", "r1"), "loss", 3, 0.4, 8),
        (("sw", "r2"), "loss", 2**60, 9.0, 9),
    ]
    got = rows(m.latest("sw"))
    got.sort(key=lambda r: (r[0], r[1]))
    assert got == want
    assert [(r[0], r[1], r[3]) for r in rows(m.latest())] == [
        (k, n, v) for k, n, _, v, _ in rows(m.latest())
    ]
    assert {(r[0], r[1]): r[3] for r in rows(m.latest())} == {
        **{(r[0], r[1]): r[3] for r in want},
        (("other", "r1"), "loss"): 4.0,
    }
    # "other" alone has small steps: the scatter-max path, with a superseded value
    assert rows(m.latest("other")) == [(("other", "r1"), "loss", 9, 4.0, 16)]
    assert rows(MetricsProjection().latest()) == []
