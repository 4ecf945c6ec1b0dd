from __future__ import annotations

import math

import msgspec
import pytest

from ledger.codec import (
    decode_json_event,
    decode_json_lines,
    dumps,
    encode_canonical,
    format_ts,
    parse_ts,
)
from ledger.errors import LedgerDecodeError
from ledger.events import MetricsRecorded


def test_strict_decoding_names_unknown_field():
    with pytest.raises(LedgerDecodeError, match="unknown field `stag`"):
        decode_json_event(b'{"type":"case_created","study":"s","case":"c","stag":1}')


def test_error_names_path_of_bad_field():
    with pytest.raises(LedgerDecodeError) as err:
        decode_json_event(b'{"type":"case_created","study":"s","case":"c","stage":-1}')
    assert str(err.value) == "case_created: expected `int` >= 0 - at `$.stage`"
    assert err.value.field == "stage"


def test_unknown_type_lists_known_types():
    with pytest.raises(LedgerDecodeError, match="unknown event type 'case_made'"):
        decode_json_event(b'{"type":"case_made","study":"s"}')


def test_booleans_and_strings_are_not_metric_values():
    with pytest.raises(LedgerDecodeError, match="got `bool`"):
        decode_json_event(b'{"type":"metrics_recorded","study":"s","run":"r","values":{"a":true}}')
    with pytest.raises(LedgerDecodeError, match="values"):
        decode_json_event(
            b'{"type":"metrics_recorded","study":"s","run":"r","values":{"a":"high"}}'
        )


@pytest.mark.parametrize(
    "text",
    [
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"a":"NaN","b":"Infinity","c":"-Infinity"}}',
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"a":NaN,"b":Infinity,"c":-Infinity}}',
    ],
)
def test_nonfinite_spellings_accepted_on_input(text):
    ev = decode_json_event(text)
    assert math.isnan(ev.values["a"])
    assert ev.values["b"] == math.inf and ev.values["c"] == -math.inf


def test_nonfinite_spelled_as_strings_on_output():
    assert dumps({"v": [math.nan, math.inf, -math.inf, 1.5]}) == (
        b'{"v":["NaN","Infinity","-Infinity",1.5]}'
    )


def test_invalid_json_and_invalid_utf8_give_decode_errors():
    with pytest.raises(LedgerDecodeError, match="invalid JSON"):
        decode_json_event(b'{"type": ')
    with pytest.raises(LedgerDecodeError):
        decode_json_event(b'{"type":"study_created","study":"\xff\xfe"}')


def test_deep_nesting_is_refused_not_a_crash():
    deep = (
        b'{"type":"study_created","study":"s","config":'
        + b'{"a":' * 100_000
        + b"1"
        + b"}" * 100_001
    )
    with pytest.raises(LedgerDecodeError, match="nested deeper"):
        decode_json_event(deep)


def test_lines_carry_file_and_line_numbers():
    lines = [
        b'{"type":"study_created","study":"s"}',
        b"",
        b'{"type":"case_created","study":"s"}',
    ]
    with pytest.raises(LedgerDecodeError) as err:
        list(decode_json_lines(lines, source="events.jsonl"))
    assert str(err.value).startswith(
        "events.jsonl:3: case_created: object missing required field `case`"
    )


def test_canonical_bytes_ignore_dict_order():
    a = MetricsRecorded(study="s", run="r", values={"x": 1, "y": 2.0})
    b = MetricsRecorded(study="s", run="r", values={"y": 2.0, "x": 1})
    assert encode_canonical(a) == encode_canonical(b)
    assert msgspec.msgpack.decode(encode_canonical(a))["values"] == {"x": 1, "y": 2.0}


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-01-31T12:00:00.5+01:00", 1769857200_500000),
        ("2021-04-01T10:00:00-07:00", 1617296400_000000),
        (1.25, 1_250_000),
        (0, 0),
    ],
)
def test_parse_ts(value, micros):
    assert parse_ts(value) == micros


def test_parse_ts_refuses_naive_times():
    with pytest.raises(LedgerDecodeError, match="RFC 3339"):
        parse_ts("2026-01-31T12:00:00")


def test_format_ts_is_utc_with_micros_and_z(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert format_ts(1769857200_500000) == "2026-01-31T11:00:00.500000Z"


@pytest.mark.parametrize(
    "values",
    [
        {"a": -math.nan, "b": 1.0},  # a negative NaN straight from Python
        {"up": math.inf, "down": -math.inf},  # sums to NaN without holding one
        {"big": 2**63 - 1, "x": 1e308, "y": 1e308},  # the sum overflows to inf
    ],
)
def test_dict_input_keeps_values_and_one_canonical_nan(values):
    import struct

    from ledger.codec import encode_canonical, event_from_obj

    ev = event_from_obj({"type": "metrics_recorded", "study": "s", "run": "r", "values": values})
    for name, v in values.items():
        got = ev.values[name]
        if v != v:
            assert struct.pack("<d", got) == struct.pack("<d", math.nan)
        else:
            assert got == v and type(got) is type(v)
    again = event_from_obj({"type": "metrics_recorded", "study": "s", "run": "r", "values": values})
    assert encode_canonical(again) == encode_canonical(ev)


def test_a_batch_of_dicts_converts_like_one_dict_at_a_time(ledger):
    """``events_from_objs`` (one msgspec call for a whole batch) gives the very events
    ``event_from_obj`` gives one by one; any refusal falls back to the per-event path,
    which names the event."""
    from ledger.codec import encode_canonical, event_from_obj, events_from_objs

    batch = [
        {"type": "study_created", "study": "s", "config": {"lr": 0.1}},
        {"type": "case_created", "study": "s", "case": "c"},
        {"type": "run_started", "study": "s", "case": "c", "run": "r"},
        {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"a": -math.nan}},
        {"type": "metrics_recorded", "study": "s", "run": "r", "step": 2, "values": {"b": 1}},
    ]
    together = events_from_objs(batch)
    assert [encode_canonical(e) for e in together] == [
        encode_canonical(event_from_obj(d)) for d in batch
    ]
    assert events_from_objs([*batch, {"type": "metrics_recorded", "values": {"x": "NaN"}}]) is None
    bad = [
        *batch[:4],
        {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"x": True}},
    ]
    with pytest.raises(LedgerDecodeError, match=r"event 5 of the batch.*values"):
        ledger.append(bad)
    assert ledger.head.seq == 0
    spelled = [
        *batch[:3],
        {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"x": "NaN"}},
    ]
    assert ledger.append(spelled).appended == 4
