"""Metric columns (``ledger.columns``) and frames (``Ledger.read_frames``): the columns a
block stores say exactly what its events say, and a frame read from them equals a frame
built from the decoded envelopes, for any slice of the log and any study."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger
from ledger.blocks import BlockView, seq_key
from ledger.columns import encode_columns, parse_columns
from ledger.errors import CorruptionError
from ledger.events import MetricsRecorded
from ledger.frames import Frame


def rows_of(frame: Frame) -> tuple[list[int], list[tuple]]:
    """A frame as plain data, independent of its table numbering."""
    m = frame.metrics
    starts = m.value_starts()
    rows = []
    for i in range(m.count):
        vals = [
            (m.names[int(m.metric[j])], _same_nan(float(m.value[j])))
            for j in range(int(starts[i]), int(starts[i + 1]))
        ]
        rows.append(
            (int(m.seq[i]), int(m.ts[i]), int(m.step[i]), m.runs[int(m.run[i])], tuple(vals))
        )
    return [e.seq for e in frame.other], rows


def _same_nan(x: float) -> Any:
    return "nan" if math.isnan(x) else x


def assert_first_seen(frame: Frame) -> None:
    m = frame.metrics
    for idx, table in ((m.run, m.runs), (m.metric, m.names)):
        seen = list(dict.fromkeys(idx.tolist()))
        assert seen == list(range(len(table))), "tables must be in first-seen order"


def setup_events(studies: list[str], runs: int) -> list[dict]:
    out: list[dict] = []
    for s in studies:
        out.append({"type": "study_created", "study": s, "ts": 1})
        out.append({"type": "case_created", "study": s, "case": "c", "ts": 1})
        for r in range(runs):
            out.append({"type": "run_started", "study": s, "case": "c", "run": f"r{r}", "ts": 2})
    return out


def test_append_stores_columns_in_canonical_order(ledger) -> None:
    events = setup_events(["s"], 2)
    # keys out of order, a final value, an int, NaN, and an event that is not a metric
    events += [
        {"type": "metrics_recorded", "study": "s", "run": "r1", "step": 3,
         "values": {"zeta": 1, "alpha": 2.5}, "ts": 10},
        {"type": "metrics_recorded", "study": "s", "run": "r0", "values": {"loss": "NaN"}},
        {"type": "artifact_recorded", "study": "s", "run": "r0", "name": "a", "uri": "u"},
        {"type": "metrics_recorded", "study": "s", "run": "r1", "step": 4,
         "values": {"alpha": 3.0, "zeta": 2}, "ts": 11},
    ]  # fmt: skip
    ledger.append(events)
    (frame,) = list(ledger.read_frames())
    assert_first_seen(frame)
    other, rows = rows_of(frame)
    assert other == [1, 2, 3, 4, 7]
    head_ts = next(ledger.read(5, 6)).ts
    assert rows == [
        (5, 10_000_000, 3, ("s", "r1"), (("alpha", 2.5), ("zeta", 1.0))),
        (6, head_ts, -1, ("s", "r0"), (("loss", "nan"),)),
        (8, 11_000_000, 4, ("s", "r1"), (("alpha", 3.0), ("zeta", 2.0))),
    ]
    assert rows_of(Frame.from_envelopes(list(ledger.read()))) == (other, rows)
    assert ledger.verify().ok


metric_event = st.builds(
    dict,
    type=st.just("metrics_recorded"),
    study=st.sampled_from(["a", "b"]),
    run=st.sampled_from(["r0", "r1", "r2"]),
    step=st.one_of(st.none(), st.integers(0, 5), st.just(2**63 - 1)),
    values=st.dictionaries(
        st.sampled_from(["loss", "acc", "lr", "z", "é"]),
        st.one_of(st.floats(allow_nan=True), st.integers(-(2**63), 2**63 - 1)),
        max_size=4,
    ),
)
other_event = st.builds(
    dict,
    type=st.just("artifact_recorded"),
    study=st.sampled_from(["a", "b"]),
    run=st.sampled_from(["r0", "r1", "r2"]),
    name=st.text("xyz", min_size=1, max_size=3),
    uri=st.just("file:///x"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.lists(st.one_of(metric_event, metric_event, other_event), min_size=1, max_size=30),
        min_size=1,
        max_size=5,
    ),
    cut=st.tuples(st.integers(0, 200), st.integers(0, 200)),
    study=st.sampled_from([None, "a", "b"]),
    chunk=st.sampled_from([1, 7, 8192]),
)
def test_frames_from_columns_equal_frames_from_envelopes(
    tmp_path_factory, batches, cut, study, chunk
) -> None:
    path = tmp_path_factory.mktemp("frames") / "f.ledger"
    with Ledger(path) as led:
        led.append(setup_events(["a", "b"], 3))
        for i, batch in enumerate(batches):
            for j, ev in enumerate(batch):
                ev["id"] = f"{i}-{j}"  # equal random events are not duplicates
            led.append(batch)
        since, until = sorted(cut)
        got_other: list[int] = []
        got_rows: list[tuple] = []
        last = since
        for frame in led.read_frames(since, until, study=study, chunk_events=chunk):
            assert frame.first == last
            last = frame.last
            assert_first_seen(frame)
            other, rows = rows_of(frame)
            got_other += other
            got_rows += rows
        envs = list(led.read(since, until, study=study))
        assert (got_other, got_rows) == rows_of(Frame.from_envelopes(envs))
        assert led.verify().ok


def test_frame_since_slices_rows_and_values(ledger) -> None:
    events = setup_events(["s"], 2)
    for step in range(6):
        events.append(
            {"type": "metrics_recorded", "study": "s", "run": f"r{step % 2}", "step": step,
             "values": {"a": step, **({"b": -step} if step % 3 else {})}}
        )  # fmt: skip
    ledger.append(events)
    (frame,) = list(ledger.read_frames())
    for start in range(0, ledger.head.seq + 1):
        part = frame.since(start)
        assert_first_seen(part)
        assert rows_of(part) == rows_of(Frame.from_envelopes(list(ledger.read(start))))


def test_steps_past_int64_are_refused_at_append(ledger) -> None:
    """Issue 18: a step at or above 2**63 used to be accepted and then clamped in the
    columns, silently superseding the value at step 2**63 - 1."""
    from ledger.errors import LedgerDecodeError

    ledger.append(setup_events(["s"], 1))
    head = ledger.head
    for step in (2**63, 2**64 - 1):
        with pytest.raises(
            LedgerDecodeError, match=r"expected `int` <= 9223372036854775807 - at `\$\.step`"
        ) as err:
            ledger.append([{"type": "metrics_recorded", "study": "s", "run": "r0", "step": step,
                            "values": {"x": 1}}])  # fmt: skip
        assert err.value.field == "step"
        with pytest.raises(LedgerDecodeError, match="step"):
            ledger.append([MetricsRecorded(study="s", run="r0", step=step, values={"x": 1})])
    assert ledger.head == head
    ledger.append([{"type": "metrics_recorded", "study": "s", "run": "r0", "step": 2**63 - 1,
                    "values": {"x": 1}}])  # fmt: skip
    (frame,) = list(ledger.read_frames(ledger.head.seq - 1))
    assert frame.metrics.step.tolist() == [2**63 - 1]


def test_steps_past_int64_of_an_older_ledger_read_clipped_in_columns() -> None:
    """What an older release let in stays readable: its columns hold 2**63 - 1."""
    old = MetricsRecorded(study="s", run="r0", step=2**64 - 1, values={"x": 1})
    cols = parse_columns(encode_columns([0], [0], [old]), 1, 1)
    assert cols.step.tolist() == [2**63 - 1]


def test_more_than_65535_names_use_wide_indices() -> None:
    names = [f"m{i}" for i in range(70_000)]
    events = [
        MetricsRecorded(study="s", run="r", values=dict.fromkeys(names[:40_000], 1)),
        MetricsRecorded(study="s", run="r", values=dict.fromkeys(names[30_000:], 2)),
    ]
    cols = parse_columns(encode_columns([0, 1], [5, 6], events), 1, 2)
    assert len(cols.names) == 70_000 and cols.metric.dtype == np.dtype("<u4")
    assert cols.names[int(cols.metric[-1])] == sorted(names[30_000:])[-1]


def _block_keys(ledger: Ledger) -> list[bytes]:
    with ledger._store.env.read() as txn:
        return [bytes(k) for k, _ in txn.cursor(db=ledger._store.dbs["events"])]


def _sealed(raw: bytes, first_seq: int) -> bytes:
    """``raw`` with its layout 3 checksums recomputed: the block a writer with a bug
    would store (the checksums vouch for the bytes, not for their meaning)."""
    import struct

    from xxhash import xxh3_64_intdigest

    from ledger.columns import parse_columns

    n = struct.unpack_from("<I", raw, 3)[0]
    offsets = struct.unpack_from(f"<{n + 1}I", raw, 63 + 8 * n)
    data_start = 63 + 8 * n + 4 * (n + 1)
    data_end = data_start + offsets[n]
    columns = raw[data_end:]
    frames = b""
    if columns:
        try:
            metric = set(parse_columns(columns, first_seq, n).pos.tolist())
        except CorruptionError:  # garbled on purpose: seal the columns alone
            metric = set(range(n))
        others = [i for i in range(n) if i not in metric]
        frames = columns + b"".join(
            raw[data_start + offsets[i] : data_start + offsets[i + 1]] for i in others
        )
    sums = struct.pack("<QQ", xxh3_64_intdigest(raw[63:data_end]), xxh3_64_intdigest(frames))
    header = xxh3_64_intdigest(raw[:39] + sums, seed=first_seq)
    return raw[:39] + sums + struct.pack("<Q", header) + raw[63:]


def _rewrite_block(ledger: Ledger, key: bytes, change, *, seal: bool = True) -> None:
    def edit(txn):
        raw = bytes(txn.get(key, db=ledger._store.dbs["events"]))
        first = int.from_bytes(key, "big")
        new = change(BlockView(first, raw), raw)
        txn.put(key, _sealed(new, first) if seal else new, db=ledger._store.dbs["events"])

    ledger._store.env.write(edit)


def test_verify_names_the_block_whose_columns_disagree(ledger) -> None:
    events = setup_events(["s"], 1)
    events += [{"type": "metrics_recorded", "study": "s", "run": "r0", "step": i,
                "values": {"loss": 1.5}} for i in range(5)]  # fmt: skip
    ledger.append(events)

    def flip_a_value(block: BlockView, raw: bytes) -> bytes:
        at = raw.rindex(np.float64(1.5).tobytes())  # the last value, inside the columns
        assert at >= block.data_end
        return raw[:at] + np.float64(9.5).tobytes() + raw[at + 8 :]

    _rewrite_block(ledger, _block_keys(ledger)[0], flip_a_value)
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == 1
    assert "metric columns disagree with its events" in report.error


def test_garbled_columns_raise_corruption_naming_the_block(ledger) -> None:
    """Columns a writer garbled (checksums intact) fail to parse; columns changed after
    they were written fail their checksum. Either way an error names the block."""
    events = setup_events(["s"], 1)
    events.append({"type": "metrics_recorded", "study": "s", "run": "r0", "values": {"x": 1}})
    ledger.append(events)
    key = _block_keys(ledger)[0]
    pristine = bytes(ledger._store.env.env.begin().get(key, db=ledger._store.dbs["events"]))
    garble = lambda b, raw: raw[: b.data_end] + b"\x95\x01garbage"  # noqa: E731
    _rewrite_block(ledger, key, garble)
    with pytest.raises(CorruptionError, match="corrupt at seq 1: metric columns"):
        list(ledger.read_frames())
    assert not ledger.verify().ok
    _rewrite_block(ledger, key, lambda b, raw: pristine, seal=False)
    assert ledger.verify().ok
    _rewrite_block(ledger, key, garble, seal=False)
    with pytest.raises(
        CorruptionError, match=r"corrupt at seq 1: metric columns|block of seqs 1-\d+ fails"
    ):
        list(ledger.read_frames())
    _rewrite_block(ledger, key, lambda b, raw: pristine, seal=False)

    def flip(block: BlockView, raw: bytes) -> bytes:  # one bit of the value 1.0
        at = raw.rindex(np.float64(1.0).tobytes())
        assert at >= block.data_end
        return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]

    _rewrite_block(ledger, key, flip, seal=False)
    with pytest.raises(CorruptionError, match=r"block of seqs 1-\d+ fails its columns checksum"):
        list(ledger.read_frames())
    assert not ledger.verify().ok


def test_blocks_without_columns_are_read_by_decoding(ledger) -> None:
    """Blocks written before format 2 (or by hand) carry no columns; frames and verify
    fall back to the events themselves."""
    events = setup_events(["s"], 2)
    events += [{"type": "metrics_recorded", "study": "s", "run": f"r{i % 2}", "step": i,
                "values": {"b": i, "a": -i}} for i in range(9)]  # fmt: skip
    ledger.append(events[:7])
    ledger.append(events[7:])
    want = rows_of(Frame.from_envelopes(list(ledger.read())))
    for key in _block_keys(ledger):
        _rewrite_block(ledger, key, lambda b, raw: raw[: b.data_end])
    assert rows_of(next(ledger.read_frames())) == want
    assert ledger.verify().ok
    assert seq_key(1) in _block_keys(ledger)


finish_event = st.builds(
    dict,
    type=st.just("run_finished"),
    study=st.sampled_from(["a", "b"]),
    run=st.sampled_from(["r0", "r1", "r2"]),
    status=st.sampled_from(["completed", "failed"]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.one_of(metric_event, metric_event, other_event, finish_event), max_size=60),
    until=st.integers(0, 80),
    study=st.sampled_from([None, "a", "b"]),
)
def test_study_states_from_frames_equal_the_fold_of_envelopes(
    tmp_path_factory, events, until, study
) -> None:
    """``status``, ``resume`` and the Recorder read large logs as frames: the same
    per-study counts, cases, runs, finals and last seqs as the fold of every event."""
    import msgspec

    from ledger import summary

    path = tmp_path_factory.mktemp("states") / "s.ledger"
    with Ledger(path) as led:
        led.append(setup_events(["a", "b"], 3))
        for j, ev in enumerate(events):
            ev["id"] = f"e{j}"
            try:
                led.append([ev])  # events after a run's finish are refused: skip them
            except Exception:
                pass
        want = summary.fold_studies(led.read(0, until, study=study))
        got = summary.fold_frames(led.read_frames(0, until, study=study, chunk_events=7))
        assert msgspec.to_builtins(got) == msgspec.to_builtins(want)
        saved, summary.FRAMES_FROM = summary.FRAMES_FROM, 0
        try:
            states = summary.study_states(led, study=study, until=until)
        finally:
            summary.FRAMES_FROM = saved
        assert msgspec.to_builtins(states) == msgspec.to_builtins(want)
