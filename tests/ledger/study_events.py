"""Small, readable event streams shared by the ledger tests."""

from __future__ import annotations


def basic_study(study: str = "s") -> list[dict]:
    return [
        {
            "type": "study_created",
            "study": study,
            "objectives": [{"metric": "loss", "direction": "min"}],
        },
        {"type": "case_created", "study": study, "case": "base", "params": {"lr": 0.1}},
        {"type": "eco_applied", "study": study, "case": "c1", "parent": "base", "eco": "halve_lr"},
        {"type": "run_started", "study": study, "case": "c1", "run": "r1", "seed": 1},
        {
            "type": "metrics_recorded",
            "study": study,
            "run": "r1",
            "step": 0,
            "values": {"loss": 1.0},
        },
        {"type": "metrics_recorded", "study": study, "run": "r1", "values": {"loss": 0.5}},
        {"type": "run_finished", "study": study, "run": "r1", "status": "completed"},
    ]
