"""A seeded study for the export tests: every event has an explicit ``ts``, so the same
seed gives the same ledger content (and the same export bytes) in any process.

It has stages 0-2 built by ECOs, several attempts per case, stepped and final values,
a superseding correction, NaN and ±inf, a failed and an invalidated run, artifacts and
a recorded selection — and, on request, hostile names and secret canaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

T0 = 1_714_521_600  # 2024-05-01T00:00:00Z
HOSTILE_CASES = [
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    '=1+2";=1+2',
    "-1.5",
]
CANARIES = {
    "config": "CANARY-CONFIG-API-KEY-7f3a",
    "url": "CANARY-URL-PASSWORD-91bc",
    "param": "CANARY-PARAM-TOKEN-55d1",
    "run_config": "CANARY-RUN-SECRET-0a0a",
    "provenance": "CANARY-PROVENANCE-PASSWORD-b00b",
    "error": "CANARY-ERROR-URL-c0c0",
    "bearer": "CANARY-BEARER-d1d1",
    "policy": "CANARY-POLICY-CREDENTIAL-e2e2",
    "artifact": "CANARY-ARTIFACT-URL-f3f3",
}


def seeded_events(
    study: str = "chip",
    *,
    seed: int = 7,
    n_cases: int = 6,
    attempts: int = 2,
    steps: int = 5,
    t0: int = T0,
    hostile: bool = False,
    canaries: bool = False,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    clock = iter(range(t0, t0 + 10**7))
    out: list[dict[str, Any]] = []

    def add(type_: str, **fields: Any) -> None:
        ev = {"type": type_, "study": study, "ts": next(clock)}
        ev.update({k: v for k, v in fields.items() if v is not None})
        out.append(ev)

    config: dict[str, Any] = {"lr": 0.1, "flow": "orfs", "max_tokens": 8}
    if canaries:
        config["api_key"] = CANARIES["config"]
        config["db"] = f"postgres://user:{CANARIES['url']}@db.example/x"
    add(
        "study_created",
        objectives=[{"metric": "qor", "direction": "max"}],
        config=config,
        description="seeded export study",
        tags=["export", "test"],
    )
    names = [f"c{i:02d}" for i in range(n_cases)]
    if hostile:
        names[1 : 1 + len(HOSTILE_CASES)] = HOSTILE_CASES[: n_cases - 1]
    params0: dict[str, Any] = {"lr": 0.1, "flag": True, "layers": 4, "mode": "fast"}
    if hostile:
        params0["=evil"] = '=HYPERLINK("http://x")'
    if canaries:
        params0["auth_token"] = CANARIES["param"]
    add("case_created", case=names[0], params=params0)
    for i, case in enumerate(names[1:], start=1):
        parent = names[(i - 1) // 2]
        params = {"lr": float(rng.uniform(0.01, 0.2)), "flag": bool(i % 2), "layers": 4 + i}
        params["mode"] = "@slow" if hostile and i == 2 else ("fast" if i % 3 else "slow")
        if hostile:  # ids refuse control characters; free text does not
            params["note"] = ["\tTAB", "\rCR", "\nLF", "-x", "+x", "ok"][i % 6]
        if i == 3:
            params["nested"] = {"a": [1, 2], "b": None}
        add(
            "eco_applied",
            case=case,
            parent=parent,
            eco=f"eco{i % 3}",
            eco_class="sizing" if i % 2 else None,
            params=params,
        )
    run_no = 0
    for case in names:
        for attempt in range(1, attempts + 1):
            run_no += 1
            _run(add, rng, case, attempt, run_no, steps, hostile=hostile, canaries=canaries)
    add("run_invalidated", run=f"{names[0]}/r{attempts}", reason="bad host")
    policy: dict[str, Any] = {"keep": 2}
    if canaries:
        policy["credential"] = CANARIES["policy"]
        policy["header"] = f"Bearer {CANARIES['bearer']}"
    add("selection_recorded", stage=1, survivors=names[1:3], policy=policy)
    return out


def _run(
    add: Callable[..., None],
    rng: np.random.Generator,
    case: str,
    attempt: int,
    run_no: int,
    steps: int,
    *,
    hostile: bool,
    canaries: bool,
) -> None:
    """One run of ``seeded_events``: started, stepped and final metrics, finished (and
    the planted oddities of particular runs). Draws from ``rng`` in a fixed order."""
    run = f"{case}/r{attempt}"
    run_config: dict[str, Any] = {"batch": 32}
    provenance: dict[str, Any] = {"commit": "a" * 40, "dirty": False}
    if canaries:
        run_config["client_secret"] = CANARIES["run_config"]
        provenance["password"] = CANARIES["provenance"]
    add(
        "run_started",
        case=case,
        run=run,
        attempt=attempt,
        seed=run_no,
        host="=host" if hostile else f"node{run_no % 3}",
        pid=1000 + run_no,
        config=run_config,
        provenance=provenance,
    )
    for step in range(steps):
        add(
            "metrics_recorded",
            run=run,
            step=step,
            values={"loss": float(rng.lognormal(0, 1)), "qor": float(rng.normal(1, 0.3))},
        )
    finals = {"qor": float(rng.normal(2, 0.5)), "area": float(rng.integers(100, 200))}
    if run_no == 3:
        finals["area"] = math.nan
    if run_no == 4:
        finals["loss"] = math.inf
    add("metrics_recorded", run=run, values=finals)
    if run_no == 2:  # a correction: supersedes step 1's qor
        add("metrics_recorded", run=run, step=1, values={"qor": 9.5})
    status = "failed" if run_no == 5 else "completed"
    error = None
    if status == "failed":
        error = "=ERROR(1)" if hostile else "out of memory"
        if canaries:
            error = f"fetch https://u:{CANARIES['error']}@host/x failed"
    add(
        "run_finished",
        run=run,
        status=status,
        error=error,
        resources={"wall_s": float(10 + run_no), "cpu_s": float(5 + run_no)},
    )
    if run_no == 1:
        uri = "s3://bucket/r1.tar"
        if canaries:
            uri = f"https://me:{CANARIES['artifact']}@store/r1.tar"
        add("artifact_recorded", run=run, name="netlist", uri=uri, bytes=123)


def in_force(events: list[dict[str, Any]]) -> dict[tuple[str, str, int | None], float]:
    """The reference: (run, metric, step) -> the last value recorded, in plain Python."""
    out: dict[tuple[str, str, int | None], float] = {}
    for ev in events:
        if ev["type"] == "metrics_recorded":
            for name, value in ev["values"].items():
                out[(ev["run"], name, ev.get("step"))] = value
    return out
