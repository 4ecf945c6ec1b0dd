"""A seeded chip-design-like study for the report's tests and benchmark.

``build(path, cases=1000, runs=10, steps=2000)``: 10 roots in stage 0, then each stage
multiplies the cases by ten through ECOs (1,000 cases: 10 + 90 + 900), ``runs`` runs
per case (about 4% fail with an error), a stepped ``loss`` of ``steps`` steps per run,
final ``loss``, ``area_um2`` and ``drc_errors``; two objectives (loss and area, both
minimised) so there is a Pareto front; the runner's survivor decisions for stages 0
and 1. ``sparse``: only the ``full`` best cases (by their designed loss) record every
step; the others record every ``sparse``-th step — the curves the report draws (of the
best-ranked cases) are then the same as in the full study at a fraction of the
events. Metric events go through the ledger's fast path (strict structs, no id or ts).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ledger import Ledger
from ledger.events import strict_class

ECOS = [
    ("upsize_crit", "sizing"),
    ("insert_buffers", "timing"),
    ("lvt_swap", "timing"),
    ("reroute", "routing"),
    ("retime", "timing"),
    ("shrink_util", "floorplan"),
]
T0 = 1_714_521_600


def _case_ids(cases: int) -> list[tuple[str, str | None, int, int]]:
    """(case, parent, stage, eco index) in creation order: 10 roots, then x10 a stage."""
    roots = min(10, cases)
    out: list[tuple[str, str | None, int, int]] = [
        (f"base-{i:02d}", None, 0, -1) for i in range(roots)
    ]
    frontier = [c for c, _, _, _ in out]
    stage = 0
    while len(out) < cases:
        stage += 1
        nxt = []
        for parent in frontier:
            for k in range(9 if stage == 1 else 10):
                if len(out) >= cases:
                    break
                case = f"{parent}/{ECOS[k % len(ECOS)][0]}-{k}"
                out.append((case, parent, stage, k % len(ECOS)))
                nxt.append(case)
        frontier = nxt
    return out


def build(
    path: str | Path,
    *,
    cases: int = 1000,
    runs: int = 10,
    steps: int = 2000,
    seed: int = 7,
    study: str = "seeded",
    sparse: int | None = None,
    full: int = 16,
) -> dict[str, Any]:
    """Record the study into the ledger at ``path``; returns its shape."""
    rng = np.random.default_rng(seed)
    layout = _case_ids(cases)
    quality = {c: float(q) for (c, _, _, _), q in zip(layout, rng.uniform(0.1, 1.0, len(layout)))}
    # the ``full`` best cases stand well apart, so the ranking's best are among them
    ordered = sorted(quality, key=lambda c: (quality[c], c))[:full]
    for k, c in enumerate(ordered):
        quality[c] = 0.002 * (k + 1)
    best = set(ordered)
    metrics = strict_class("metrics_recorded")
    n_events = 0
    with Ledger(path) as led:
        setup: list[Any] = [
            {
                "type": "study_created",
                "study": study,
                "objectives": [
                    {"metric": "loss", "direction": "min"},
                    {"metric": "area_um2", "direction": "min"},
                ],
                "config": {"flow": "seeded", "seed": seed},
                "description": "seeded study for the report tests",
                "ts": T0,
            }
        ]
        for case, parent, _stage, eco in layout:
            params = {
                "util": round(float(rng.uniform(0.4, 0.9)), 3),
                "knob": int(rng.integers(0, 4)),
            }
            if parent is None:
                setup.append(
                    {
                        "type": "case_created",
                        "study": study,
                        "case": case,
                        "params": params,
                        "ts": T0,
                    }
                )
            else:
                name, klass = ECOS[eco]
                setup.append(
                    {
                        "type": "eco_applied",
                        "study": study,
                        "case": case,
                        "parent": parent,
                        "eco": name,
                        "eco_class": klass,
                        "params": params,
                        "ts": T0,
                    }
                )
        led.append(setup)
        n_events += len(setup)
        t = np.arange(steps, dtype=np.float64)
        batch: list[Any] = []
        for case, _, _, _ in layout:
            if len(batch) >= 50_000:  # commits of about a block's worth: one fsync each
                led.append(batch)
                n_events += len(batch)
                batch = []
            q = quality[case]
            stride = 1 if sparse is None or case in best else sparse
            for r in range(runs):
                run = f"{case}#{r}"
                batch.append(
                    {
                        "type": "run_started",
                        "study": study,
                        "case": case,
                        "run": run,
                        "seed": r,
                        "host": f"node-{r % 3}",
                        "provenance": {"commit": "abc123", "dirty": False},
                    }
                )
                failed = rng.random() < 0.04
                final = q * (1 + 0.05 * rng.standard_normal())
                tau = steps / rng.uniform(4, 10)
                curve = final + (2.0 - final) * np.exp(-t / tau) + 0.02 * rng.standard_normal(steps)
                upto = steps // 3 if failed else steps
                for i in range(0, upto, stride):
                    batch.append(
                        metrics(study=study, run=run, step=i, values={"loss": float(curve[i])})
                    )
                if failed:
                    batch.append(
                        {
                            "type": "run_finished",
                            "study": study,
                            "run": run,
                            "status": "failed",
                            "error": f"router crashed at step {upto}",
                        }
                    )
                    continue
                batch.append(
                    {
                        "type": "metrics_recorded",
                        "study": study,
                        "run": run,
                        "values": {
                            "loss": float(curve[steps - 1]),
                            "area_um2": round(
                                1000 + 400 * (1 - q) + 20 * float(rng.standard_normal()), 2
                            ),
                            "drc_errors": int(rng.random() < 0.1),
                        },
                    }
                )
                batch.append(
                    {
                        "type": "run_finished",
                        "study": study,
                        "run": run,
                        "status": "completed",
                        "resources": {"wall_s": round(60 + 30 * q, 1)},
                    }
                )
        led.append(batch)
        n_events += len(batch)
        stages = sorted({s for _, _, s, _ in layout})
        sel = []
        for stage in stages[:-1]:
            ranked = sorted(
                (c for c, _, s, _ in layout if s == stage), key=lambda c: (quality[c], c)
            )
            sel.append(
                {
                    "type": "selection_recorded",
                    "study": study,
                    "stage": stage,
                    "survivors": ranked[: max(1, math.ceil(len(ranked) / 5))],
                    "policy": {"rule": "top 20% by loss"},
                }
            )
        if sel:
            led.append(sel)
            n_events += len(sel)
        head = led.head
    return {
        "study": study,
        "cases": [c for c, _, _, _ in layout],
        "full": sorted(best) if sparse is not None else [c for c, _, _, _ in layout],
        "events": n_events,
        "head": head,
    }
