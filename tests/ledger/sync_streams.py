"""Event streams of one study recorded on several hosts, and the views that must agree
whichever way those streams are brought together (sync, merge, or one ledger).

The study's definition (study, base case, ECO children) is made on a third host
("shared"); each host pulls it and records its own runs, every event with an explicit
``ts`` (so the same events appended anywhere are the same events). Clocks differ from
host to host (``skew``), and a host may correct a value it recorded (a later value of
the same metric and step supersedes the earlier one).
"""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
from collections.abc import Sequence
from typing import Any

STUDY = "chip"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STATUSES = ("completed", "completed", "completed", "failed")


def definitions(study: str = STUDY, children: int = 3) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {
            "type": "study_created",
            "study": study,
            "objectives": [
                {"metric": "wns", "direction": "max"},
                {"metric": "area", "direction": "min"},
            ],
        },
        {"type": "case_created", "study": study, "case": "base", "params": {"util": 0.5}},
    ]
    for i in range(children):
        events.append(
            {
                "type": "eco_applied",
                "study": study,
                "case": f"c{i}",
                "parent": "base",
                "eco": f"eco{i % 2}",
                "params": {"util": 0.5 + i / 10},
            }
        )
    return [{**e, "ts": T0 + i / 1000} for i, e in enumerate(events)]


def cases(children: int = 3) -> list[str]:
    return ["base", *(f"c{i}" for i in range(children))]


def run_batches(
    host: str,
    runs: Sequence[tuple[int, int, str, bool]],
    *,
    skew: float = 0.0,
    study: str = STUDY,
    children: int = 3,
) -> list[list[dict[str, Any]]]:
    """A host's appends, in order: per run ``(case index, steps, status, correct)``,
    one batch with its start and steps, one with its final values and finish."""
    names = cases(children)
    t = T0 + 60 + skew
    batches: list[list[dict[str, Any]]] = []
    for n, (case_index, steps, status, correct) in enumerate(runs):
        rng = random.Random(f"{host}:{n}")
        run = f"{host}-r{n}"

        def ev(event: dict[str, Any]) -> dict[str, Any]:
            nonlocal t
            t += 0.25
            return {**event, "study": study, "ts": round(t, 6)}

        first = [ev({"type": "run_started", "case": names[case_index % len(names)], "run": run})]
        for step in range(steps):
            values = {"loss": round(rng.uniform(0, 1), 3)}
            first.append(
                ev({"type": "metrics_recorded", "run": run, "step": step, "values": values})
            )
        if correct and steps:
            values = {"loss": round(rng.uniform(0, 1), 3)}
            first.append(ev({"type": "metrics_recorded", "run": run, "step": 0, "values": values}))
        finals = {"wns": round(rng.uniform(-50, 10), 1), "area": rng.randint(100, 120)}
        second = []
        if status == "completed":
            second.append(ev({"type": "metrics_recorded", "run": run, "values": finals}))
        second.append(ev({"type": "run_finished", "run": run, "status": status}))
        batches += [first, second]
    return batches


def random_runs(rng: random.Random, count: int) -> list[tuple[int, int, str, bool]]:
    return [
        (rng.randrange(4), rng.randrange(4), rng.choice(STATUSES), rng.random() < 0.3)
        for _ in range(count)
    ]


# -- the views that must agree ----------------------------------------------------------


def rank_json(path: str, study: str = STUDY) -> dict[str, Any]:
    """``ledger rank --json`` without ``as_of`` (a seq: it depends on the other studies
    and events the ledger holds). Scores must be equal to the bit: the ranking sums a
    case's values in value order, not in the log order each host's ledger has."""
    from click.testing import CliRunner

    from cli.main import cli

    r = CliRunner().invoke(cli, ["--ledger", path, "rank", "--study", study, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    out.pop("as_of")
    return out


def export_rows(path: str, study: str = STUDY) -> dict[str, list[dict[str, str]]]:
    """The CSV export's rows, seq columns left out (seqs are each ledger's own)."""
    from ledger import Ledger
    from projections.export.api import export_study

    with tempfile.TemporaryDirectory() as out, Ledger(path, create=False) as led:
        manifest = export_study(led, study, out, formats={"csv"}, journal=False)
        rows = {}
        for table in ("cases", "runs", "metrics"):
            with open(os.path.join(manifest.path, f"{table}.csv"), newline="") as fh:
                rows[table] = [
                    {k: v for k, v in row.items() if k != "seq" and not k.endswith("_seq")}
                    for row in csv.DictReader(fh)
                ]
    return rows


def event_ids(path: str) -> list[str]:
    from ledger import Ledger

    with Ledger(path, create=False, readonly=True) as led:
        return [env.id for env in led.read()]
