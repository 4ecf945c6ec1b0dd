"""Properties of sync and merge over random hosts, batches and interleavings.

For a study defined on one host and run on several (each host's stream valid on its
own, clocks skewed, batches cut at random): merge gives one ledger whatever order the
sources are named in, and syncing every host into one target in any order gives the
same rankings and export rows (seq columns aside) as the merge and as the same events
recorded into one ledger directly, in an interleaving of the hosts' batches.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_streams import (
    STATUSES,
    definitions,
    event_ids,
    export_rows,
    rank_json,
    run_batches,
)

import ledger
from ledger import Ledger

SOAK = os.environ.get("SOAK", "") not in ("", "0")

runs = st.lists(
    st.tuples(
        st.integers(0, 3),  # case
        st.integers(0, 3),  # steps
        st.sampled_from(STATUSES),
        st.booleans(),  # a correction of step 0
    ),
    min_size=1,
    max_size=3,
)
hosts = st.lists(
    st.tuples(runs, st.sampled_from([-90.0, 0.0, 0.0, 0.125, 30.0])),  # runs, clock skew
    min_size=2,
    max_size=3,
)


def regroup(batches: list[list[dict]], rnd: random.Random) -> list[list[dict]]:
    """The same events in the same order, cut into other batches."""
    flat = [e for b in batches for e in b]
    out, i = [], 0
    while i < len(flat):
        n = rnd.randint(1, 6)
        out.append(flat[i : i + n])
        i += n
    return out


def interleave(streams: list[list[list[dict]]], rnd: random.Random) -> list[list[dict]]:
    """One sequence of all the streams' batches, each stream's order kept."""
    queues = [list(s) for s in streams if s]
    out = []
    while queues:
        q = rnd.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def _property(fast_base: str, hosts: list, rnd: random.Random) -> None:
    folder = tempfile.mkdtemp(dir=fast_base)
    try:
        check(folder, hosts, rnd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=12, **SETTINGS)
@given(hosts=hosts, rnd=st.randoms(use_true_random=False))
def test_merge_is_order_independent_and_agrees_with_sync_and_one_ledger(fast_base, hosts, rnd):
    _property(fast_base, hosts, rnd)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="150 examples run with SOAK=1 (make soak)")
@settings(max_examples=150, **SETTINGS)
@given(hosts=hosts, rnd=st.randoms(use_true_random=False))
def test_merge_and_sync_property_at_soak_size(fast_base, hosts, rnd):
    _property(fast_base, hosts, rnd)


def check(folder: str, hosts: list, rnd: random.Random) -> None:
    def path(name: str) -> str:
        return os.path.join(folder, f"{name}.ledger")

    shared = path("shared")
    with Ledger(shared) as led:
        for batch in regroup([definitions()], rnd):
            led.append(batch)
    sources, streams = [shared], []
    for h, (host_runs, skew) in enumerate(hosts):
        batches = regroup(run_batches(f"h{h}", host_runs, skew=skew), rnd)
        streams.append(batches)
        local = path(f"h{h}")
        ledger.sync(shared, local, studies=["chip"])  # pull the definition first
        with Ledger(local) as led:
            for batch in batches:
                led.append(batch)
        sources.append(local)

    direct = path("direct")
    with Ledger(direct) as led:
        led.append(definitions())
        for batch in interleave(streams, rnd):
            led.append(batch)

    merged = []
    for n in range(2):
        order = rnd.sample(sources, len(sources))
        out = path(f"merged{n}")
        r = ledger.merge(order, out)
        merged.append((r.head_seq, r.head_hash, event_ids(out)))
    assert merged[0] == merged[1]

    target = path("target")
    for source in rnd.sample(sources, len(sources)):
        ledger.sync(source, target)
    assert sorted(event_ids(target)) == sorted(merged[0][2])  # every event once
    assert all(ledger.sync(s, target).appended == 0 for s in sources)

    views = {p: (rank_json(p), export_rows(p)) for p in (direct, path("merged0"), target)}
    assert views[target] == views[direct]
    assert views[path("merged0")] == views[direct]
