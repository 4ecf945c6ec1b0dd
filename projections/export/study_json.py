"""``study.json``: one study at one seq, in full, as canonical JSON.

Everything the tables flatten is here as it was recorded — nested params, run configs
and provenance, resources, artifacts — together with what the projections derive:
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

from typing import Any

import numpy as np

from ledger.codec import format_ts
from projections.export.manifest import FORMAT_VERSION
from projections.export.tables import ExportRecords

__all__ = ["study_document"]


def _ts(micros: int | None) -> str | None:
    return None if micros is None else format_ts(micros)


def _finals_by_run(rec: ExportRecords) -> dict[str, list[dict[str, Any]]]:
    """Final values in force per run, from the (already selected) metric columns."""
    m = rec.metrics
    sel = np.flatnonzero(m["final"])
    out: dict[str, list[dict[str, Any]]] = {}
    names, runs = m["metrics"], m["runs"]
    for r, mi, v, s in zip(
        m["run"][sel].tolist(),
        m["metric"][sel].tolist(),
        m["value"][sel].tolist(),
        m["seq"][sel].tolist(),
    ):
        out.setdefault(runs[r], []).append({"metric": names[mi], "value": v, "seq": s})
    return out


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
