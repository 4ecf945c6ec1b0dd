"""Property: build(as_of=k) from any checkpoints == a fold from scratch to k, byte for byte.

Random valid event streams (several studies interleaved, DAGs with several parents,
runs that finish, fail or stay open, stepped and final metrics with repeats that
supersede, NaN and ±inf, invalidations, artifacts, selections) are appended in random
batches; checkpoints are written at random positions; then every built-in projection
built at a random seq must snapshot to the same bytes as a plain fold from seq 1 —
event by event and batch by batch alike.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proj_streams import fold

from ledger import Ledger
from projections.base import build_many
from projections.builtins import builtin_projections, write_checkpoints

VALUES = [0.0, -1.5, 2.25, 3, -7, float("nan"), float("inf"), float("-inf"), 1e300]
STATUSES = ["completed", "completed", "failed", "pruned", "timeout", "cancelled", "interrupted"]
METRICS = ["x", "y", "z", "w"]

op = st.tuples(
    st.integers(0, 15),  # what: metrics (4-9) weigh most, as in real logs
    st.integers(0, 63),  # which / bits
    st.integers(0, 63),
    st.sampled_from(VALUES),
)


def _eco_applied(study: str, case: str, parent: str, b: int) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": "eco_applied",
        "study": study,
        "case": case,
        "parent": parent,
        "eco": f"e{b % 3}",
    }
    if b % 4 == 0:
        ev["stage"] = 7
    if b % 5 == 0:
        ev["eco_class"] = "k"
    return ev


def interpret(ops: list[tuple[int, int, int, Any]]) -> list[dict[str, Any]]:
    """Turn arbitrary op tuples into a stream the ledger accepts (invalid ones skip)."""
    events: list[dict[str, Any]] = []
    studies: list[str] = []
    cases: dict[str, list[str]] = {}
    open_runs: dict[str, list[str]] = {}
    done_runs: dict[str, list[str]] = {}
    all_runs: dict[str, list[str]] = {}
    n = 0
    for what, a, b, v in ops:
        n += 1
        if what == 0 or not studies:
            name = f"s{len(studies)}"
            objs = [{"metric": METRICS[a % 4], "direction": "min" if b % 2 else "max"}]
            events.append({"type": "study_created", "study": name, "objectives": objs})
            studies.append(name)
            cases[name], open_runs[name], done_runs[name], all_runs[name] = [], [], [], []
            continue
        s = studies[a % len(studies)]
        cs = cases[s]
        if what == 1 or not cs:
            parents = [c for i, c in enumerate(cs) if b >> (i % 6) & 1][:3]
            ev = {"type": "case_created", "study": s, "case": f"c{n}", "parents": parents}
            if b % 3:
                ev["stage"] = b % 3
            events.append(ev)
            cs.append(f"c{n}")
        elif what == 2:
            events.append(_eco_applied(s, f"c{n}", cs[b % len(cs)], b))
            cs.append(f"c{n}")
        elif what in (3, 15) or (4 <= what <= 9 and not open_runs[s]):
            run = f"r{n}"
            events.append(
                {
                    "type": "run_started",
                    "study": s,
                    "case": cs[b % len(cs)],
                    "run": run,
                    "seed": b,
                    "attempt": a % 2,
                }
            )
            open_runs[s].append(run)
            all_runs[s].append(run)
        elif 4 <= what <= 9:
            run = open_runs[s][b % len(open_runs[s])]
            keys = [m for i, m in enumerate(METRICS) if (a + b) >> i & 1] or ["x"]
            ev = {
                "type": "metrics_recorded",
                "study": s,
                "run": run,
                "values": {k: v for k in keys},
            }
            if what <= 7:
                ev["step"] = b % 4  # repeats supersede
            if a % 3 == 0:
                ev["id"] = f"m{n}"
            events.append(ev)
        elif what in (10, 11) and open_runs[s]:
            run = open_runs[s].pop(b % len(open_runs[s]))
            events.append(
                {
                    "type": "run_finished",
                    "study": s,
                    "run": run,
                    "status": STATUSES[a % len(STATUSES)],
                    "resources": {"wall_s": b},
                }
            )
            done_runs[s].append(run)
        elif what == 12 and done_runs[s]:
            run = done_runs[s].pop(b % len(done_runs[s]))
            events.append({"type": "run_invalidated", "study": s, "run": run, "reason": "bad"})
        elif what == 13 and all_runs[s]:
            events.append(
                {
                    "type": "artifact_recorded",
                    "study": s,
                    "run": all_runs[s][b % len(all_runs[s])],
                    "name": "f",
                    "uri": f"u{n}",
                }
            )
        elif what == 14:
            survivors = [c for i, c in enumerate(cs) if b >> (i % 6) & 1]
            events.append(
                {"type": "selection_recorded", "study": s, "stage": a % 3, "survivors": survivors}
            )
    return events


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ops=st.lists(op, min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 200), max_size=4),
    marks=st.lists(st.integers(0, 200), max_size=3),
    k=st.integers(0, 200),
)
def test_build_from_checkpoints_equals_a_fold_from_scratch(fast_base, ops, cuts, marks, k) -> None:
    events = interpret(ops)
    folder = tempfile.mkdtemp(prefix="prop-", dir=fast_base)
    try:
        with Ledger(folder + "/l") as led:
            bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
            for lo, hi in zip(bounds, bounds[1:]):
                led.append(events[lo:hi])
            head = led.head.seq
            k = min(k, head)
            for mark in sorted({min(m, head) for m in marks} - {0}):
                write_checkpoints(led, as_of=mark)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # every checkpoint here must be trusted
                got = [p.snapshot() for p in build_many(led, builtin_projections(), k)]
            batched = [fold(led, p, k).snapshot() for p in builtin_projections()]
            single = [fold(led, p, k, one_by_one=True).snapshot() for p in builtin_projections()]
            assert got == batched
            assert got == single
    finally:
        shutil.rmtree(folder, ignore_errors=True)
