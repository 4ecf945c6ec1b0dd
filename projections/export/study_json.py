"""``study.json``: one study at one seq, in full, as canonical JSON.

Everything the tables flatten is here as it was recorded — nested params, run configs
and provenance, resources, artifacts, every run's final values and its step series (per
metric, columns ``step``, ``value``, ``seq``, ``ts`` of the values in force, a later
value of a step superseding the earlier) — together with what the projections derive:
the DAG, final metric values, rankings under the study's objectives, stage summaries
and the runner's own recorded selections. Redaction has already been applied (the
same as in the tables); times are RFC 3339 UTC strings; lists are in export order
(cases by stage then id, runs by case then id, metric names by code point), never
dict order. Metric names are never used as object keys, so no secret-key rule can
touch them.

The DAG, rankings and stage summaries always describe the whole study at ``as_of``;
``--where`` selects the ``cases`` and ``runs`` lists (and their final values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ledger.codec import format_ts
from projections.export.json_writer import RawJSON
from projections.export.manifest import FORMAT_VERSION
from projections.export.tables import ExportRecords
from projections.export.time_text import format_utc_micros, utc_micros_bytes

__all__ = ["study_document"]


def _ts(micros: int | None) -> str | None:
    return None if micros is None else format_ts(micros)


def _finals_by_run(rec: ExportRecords) -> dict[str, list[dict[str, Any]]]:
    """Final values in force per run, from the (already selected) metric columns."""
    m = rec.metrics
    sel = np.flatnonzero(m["final"])
    out: dict[str, list[dict[str, Any]]] = {}
    names, runs = m["metrics"], m["runs"]
    times = _times_text(m, sel)
    for r, mi, v, s, t in zip(
        m["run"][sel].tolist(),
        m["metric"][sel].tolist(),
        m["value"][sel].tolist(),
        m["seq"][sel].tolist(),
        times,
    ):
        out.setdefault(runs[r], []).append({"metric": names[mi], "value": v, "seq": s, "ts": t})
    return out


def _times_text(m: dict[str, Any], rows: np.ndarray) -> list[str | None]:
    """RFC 3339 text of the values' times at ``rows`` (None where unknown)."""
    if m["ts"] is None:
        return [None] * len(rows)
    text = format_utc_micros(m["ts"][rows])
    if text is None:  # a year past 9999: one value at a time
        return [format_ts(int(t)) for t in m["ts"][rows].tolist()]
    return text.to_pylist()


def _json_floats(values: np.ndarray) -> list[Any]:
    """Floats as JSON takes them: non-finite ones as their strings (docs/architecture.md, Events)."""
    out: list[Any] = values.tolist()
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        v = out[i]
        out[i] = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return out


def _series_by_run(rec: ExportRecords) -> dict[str, list[RawJSON]]:
    """Per run, every stepped value in force as columns per metric (metric names in
    code-point order; steps ascending), pre-encoded as compact canonical JSON.

    A study's series can hold millions of values: each (run, metric) is spliced from
    one msgspec encoding per column, and the times' text comes from one numpy pass over
    every value (:func:`_json_times`), never a Python string per value.
    """
    import msgspec

    m = rec.metrics
    rows = np.flatnonzero(~m["final"])
    if not len(rows):
        return {}
    run, metric = m["run"][rows], m["metric"][rows]
    # Rows are sorted by (run, metric, step): a new group starts where either changes.
    starts = np.flatnonzero(
        np.concatenate(([True], (run[1:] != run[:-1]) | (metric[1:] != metric[:-1])))
    )
    ends = np.append(starts[1:], len(rows))
    encode = msgspec.json.encode
    times = _json_times(m, rows)
    groups: dict[str, list[RawJSON]] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        sel = rows[a:b]
        parts = (  # keys in sorted order, as canonical JSON has them
            b'{"metric":',
            encode(m["metrics"][int(metric[a])]),
            b',"seq":',
            encode(m["seq"][sel].tolist()),
            b',"step":',
            encode(m["step"][sel].tolist()),
            b',"ts":',
            times(a, b),
            b',"value":',
            encode(_json_floats(m["value"][sel])),
            b"}",
        )
        groups.setdefault(m["runs"][int(run[a])], []).append(RawJSON(b"".join(parts)))
    return groups


def _json_times(m: dict[str, Any], rows: np.ndarray) -> Callable[[int, int], bytes]:
    """``times(a, b)``: the JSON list of the RFC 3339 times of ``rows[a:b]``."""
    import msgspec

    micros = None if m["ts"] is None else m["ts"][rows]
    text = None if micros is None else utc_micros_bytes(micros)
    if text is None:  # no times, or a year past 9999: one value at a time
        return lambda a, b: msgspec.json.encode(_times_text(m, rows[a:b]))
    quoted = np.empty((len(rows), text.shape[1] + 3), np.uint8)
    quoted[:, 0] = quoted[:, -2] = ord('"')
    quoted[:, 1:-2] = text
    quoted[:, -1] = ord(",")
    flat = quoted.reshape(-1)
    width = quoted.shape[1]

    def times(a: int, b: int) -> bytes:
        return b"[" + flat[a * width : b * width - 1].tobytes() + b"]"

    return times


def _metric_overview(rec: ExportRecords) -> list[dict[str, Any]]:
    """Per metric name: stepped values in force, runs with a series, runs with a final."""
    m = rec.metrics
    n = len(m["metrics"])
    if not n:
        return []
    final = m["final"]
    stepped = np.bincount(m["metric"][~final], minlength=n)
    finals = np.bincount(m["metric"][final], minlength=n)
    # Distinct (metric, run) pairs of series rows.
    pairs = np.unique(
        m["metric"][~final].astype(np.int64) * max(len(m["runs"]), 1) + m["run"][~final]
    )
    series_runs = (
        np.bincount(pairs // max(len(m["runs"]), 1), minlength=n)
        if len(pairs)
        else np.zeros(n, np.int64)
    )
    return [
        {
            "metric": name,
            "stepped_values": int(stepped[i]),
            "runs_with_series": int(series_runs[i]),
            "runs_with_final": int(finals[i]),
        }
        for i, name in enumerate(m["metrics"])
    ]


def study_document(rec: ExportRecords, *, head_hash: str) -> dict[str, Any]:
    """The ``study.json`` content (write it with ``canonical_json``).

    The ledger id is left to the manifest: a ledger rebuilt by replaying this one's log
    has another id but the same events and hashes, and must export the same bytes.
    """
    view = rec.view
    info = view.dag.info
    finals = _finals_by_run(rec)
    series = _series_by_run(rec)
    ranks = rec.rankings()
    cases = [
        {
            "case": n.case,
            "stage": n.stage,
            "depth": n.depth,
            "parents": list(n.parents),
            "children": view.dag.children(n.case),
            "eco": n.eco,
            "eco_class": n.eco_class,
            "params": params,
            "created_seq": n.seq,
            "created_ts": _ts(n.ts),
        }
        for n, params in zip(rec.cases, rec.params)
    ]
    runs = []
    for r, extra in zip(rec.runs, rec.run_fields):
        runs.append(
            {
                "run": r.run,
                "case": r.case,
                "stage": rec.stage_of.get(r.case),
                "attempt": r.attempt,
                "seed": r.seed,
                "host": extra["host"],
                "pid": r.pid,
                "status": r.status,
                "error": extra["error"],
                "invalidated": r.invalidated,
                "invalidated_seq": r.invalidated_seq,
                "config": extra["config"],
                "provenance": extra["provenance"],
                "resources": extra["resources"],
                "artifacts": extra["artifacts"],
                "started_seq": r.seq,
                "started_ts": _ts(r.ts),
                "finished_seq": r.finished_seq,
                "finished_ts": _ts(r.finished_ts),
                "last_seq": r.last_seq,
                "last_ts": _ts(r.last_ts),
                "finals": finals.get(r.run, []),
                "series": series.get(r.run, []),
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "study": rec.study,
        "as_of": rec.as_of,
        "head_hash": head_hash,
        "created_seq": info.seq if info else None,
        "created_ts": _ts(info.ts) if info else None,
        "description": rec.info["description"],
        "tags": rec.info["tags"],
        "config": rec.info["config"],
        "objectives": [{"metric": m, "direction": d} for m, d in view.objectives],
        "where": rec.where.texts,
        "dag": {k: v for k, v in view.dag_dict().items() if k in ("nodes", "edges")},
        "cases": cases,
        "runs": runs,
        "metrics": _metric_overview(rec),
        "rankings": None
        if ranks.policy is None
        else {
            "policy": ranks.policy.to_dict(),
            "all_stages": _ranking(ranks.overall),
            "by_stage": [_ranking(r) for r in ranks.by_stage],
        },
        "stage_summaries": [s.to_dict() for s in view.stage_summaries(ranks.policy)],
        "selections": rec.selections,
    }


def _ranking(ranking: Any) -> dict[str, Any]:
    d = ranking.to_dict()
    return {"stage": d["stage"], "ranking": d["ranking"], "unranked": d["unranked"]}
