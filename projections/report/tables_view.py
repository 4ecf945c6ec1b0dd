"""The header, the runs table and the provenance: what the report is of, and from where.

The header names the log position (as-of seq and the chain hash there, the pair an
export's manifest records), so a report ties to the exports made at the same seq. It
holds no time of its own making: the same ledger prefix gives the same bytes.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from projections.text import format_value

from .context import Context

MAX_PROVENANCE = 20
MAX_ARTIFACTS = 50
MAX_ERROR = 90
CHUNK = 500  # runs per table: a closed <details> is not laid out, so 10,000 runs open fast


def versions() -> list[tuple[str, str]]:
    """The packages whose versions decide the report's bytes."""
    out = []
    for name in ("results-ledger", "jinja2", "numpy", "tsdownsample"):
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, default=str)


def build_header(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    info = view.dag.info
    counts = view.runs.status_counts()
    stages = view.dag.stages()
    return {
        "study": ctx.study,
        "description": info.description if info is not None else None,
        "as_of": ctx.as_of,
        "head_hash": ctx.head_hash,
        "cases": len(view.dag.nodes),
        "stages": (
            f"{stages[0]}–{stages[-1]}" if len(stages) > 1 else str(stages[0]) if stages else "none"
        ),
        "runs": sum(counts.values()),
        "by_status": list(counts.items()),
        "objectives": [{"metric": m, "direction": d} for m, d in ctx.objectives],
        "options": ctx.options.text(),
        "selections": len(view.selections),
    }


def build_runs(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    runs = view.runs.sorted()
    if not runs:
        return {"empty": "The study has no run yet."}
    metrics = [m for m, _ in ctx.objectives][:3]
    finals = view.finals_by_metric(metrics, [r.run for r in runs])
    values: dict[str, list[str]] = {}
    for m in metrics:
        col = ["-"] * len(runs)
        got = finals.get(m)
        if got is not None:
            for p, v in zip(got[0].tolist(), got[1].tolist()):
                col[p] = format_value(v)
        values[m] = col
    stage = {n.case: n.stage for n in view.dag.nodes.values()}
    rows = []
    for i, r in enumerate(runs):
        status = r.status or "running"
        if r.invalidated is not None:
            status += " (invalidated)"
        error = r.error or ""
        wall = r.wall_s
        rows.append(
            (
                r.run,
                r.case,
                stage.get(r.case, "-"),
                status,
                "-" if r.attempt is None else r.attempt,
                "-" if r.seed is None else r.seed,
                r.host or "-",
                "-" if wall is None else format_value(round(wall, 3)),
                *(values[m][i] for m in metrics),
                error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…",
                error if len(error) > MAX_ERROR else "",
                r.invalidated or "",
            )
        )
    chunks = []
    for lo in range(0, len(rows), CHUNK):
        part = rows[lo : lo + CHUNK]
        chunks.append(
            {
                "rows": part,
                "label": f"runs {lo + 1:,}–{lo + len(part):,}: cases {part[0][1]} … {part[-1][1]}",
                "open": lo == 0,
            }
        )
    return {"empty": None, "metrics": metrics, "chunks": chunks, "count": len(rows)}


def build_provenance(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    info = view.dag.info
    groups: dict[str, list[str]] = {}
    hosts: dict[str, int] = {}
    artifacts = []
    for r in view.runs.sorted():
        key = _json(r.provenance) if r.provenance else ""
        groups.setdefault(key, []).append(r.run)
        host = r.host or "(not recorded)"
        hosts[host] = hosts.get(host, 0) + 1
        for a in r.artifacts:
            artifacts.append((r.run, a.name, a.uri, a.sha256 or "-", a.bytes))
    prov = [
        {"text": k or "(none recorded)", "runs": len(v), "example": v[0]}
        for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return {
        "ledger_id": ctx.ledger.ledger_id,
        "as_of": ctx.as_of,
        "head_hash": ctx.head_hash,
        "versions": versions(),
        "config": _json(info.config) if info is not None and info.config else None,
        "tags": list(info.tags or []) if info is not None else [],
        "created_seq": info.seq if info is not None else None,
        "provenance": prov[:MAX_PROVENANCE],
        "provenance_more": max(0, len(prov) - MAX_PROVENANCE),
        "hosts": sorted(hosts.items()),
        "artifacts": artifacts[:MAX_ARTIFACTS],
        "artifacts_total": len(artifacts),
        "selections": [
            {
                "stage": s.stage,
                "survivors": ", ".join(s.survivors),
                "seq": s.seq,
                "policy": _json(s.policy) if s.policy else "-",
            }
            for s in view.selections
        ],
    }
