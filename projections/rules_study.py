"""What ``ledger check`` evaluates: each counted run's final values and attributes.

``projections.rules_eval`` is a pure function of ``{run: {metric: value}}`` and each run's
attributes; this module folds one study (``load_study``) into those inputs and keeps the
run -> case mapping and the runs it did not check, so the report can say why.

Which runs are checked: the completed, non-invalidated runs, the same runs rankings
aggregate (docs/architecture.md, Projections: invalidated runs count nowhere). A failed, cancelled or still
running run is listed under ``skipped`` with its status: its final metrics, if any, are
not a flow result a rule can judge. A run's attributes are its case's params overlaid
with its own ``config`` (strings such as ``synth__netlist__hash`` and the time units live
there after an ORFS import). Only the metrics the rules name are read from the final
table, so a study with thousands of metrics costs what its rules cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import ProjectionError
from .rules_eval import CheckReport, Rule, check_runs
from .study import StudyView

__all__ = ["StudyCheck", "check_inputs", "check_study"]


@dataclass
class StudyCheck:
    """A ``CheckReport`` with where it came from: study, seq, case filter, run -> case."""

    study: str
    as_of: int
    case: str | None
    rules_source: str | None
    report: CheckReport
    case_of: dict[str, str]
    skipped: list[dict[str, str]] = field(default_factory=list)
    only_runs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_json(self) -> dict[str, Any]:
        """The ``check --json`` shape: ``CheckReport.to_json`` plus study, as_of, case,
        only_runs, rules_file, each run's case and the runs not checked (with the reason)."""
        body = self.report.to_json()
        for item in body["runs"]:
            item["case"] = self.case_of.get(item["run"])
        out: dict[str, Any] = {
            "ok": body.pop("ok"),
            "study": self.study,
            "as_of": self.as_of,
            "case": self.case,
            "only_runs": list(self.only_runs),
            "rules_file": self.rules_source,
        }
        out.update(body)
        out["skipped"] = list(self.skipped)
        return out


def check_inputs(
    view: StudyView,
    fields: Sequence[str],
    *,
    case: str | None = None,
    runs: Sequence[str] = (),
) -> tuple[
    dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str], list[dict[str, str]]
]:
    """``(final, attrs, case_of, skipped)`` for the counted runs of ``view`` (of ``case``).

    ``final[run]`` holds the run's final values in force of the metrics in ``fields``;
    ``attrs[run]`` its case params overlaid with its config. ``runs`` limits it to those
    run ids (a CI gate checks the run it just recorded). Raises ``ProjectionError`` for a
    case or run the study does not hold.
    """
    if case is not None and view.dag.node(case) is None:
        known = [n.case for n in view.dag.cases()]
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise ProjectionError(
            f"study {view.study!r} has no case {case!r} at seq {view.as_of}"
            + (f" (cases: {shown})" if known else " (it has no case yet)")
        )
    wanted = set(runs)
    missing = sorted(r for r in wanted if view.runs.run(r) is None)
    if missing:
        raise ProjectionError(
            f"study {view.study!r} has no run {', '.join(map(repr, missing))} at seq "
            f"{view.as_of}; `ledger log --study {view.study} --type run_started` lists its runs"
        )
    final: dict[str, dict[str, Any]] = {}
    attrs: dict[str, dict[str, Any]] = {}
    case_of: dict[str, str] = {}
    skipped: list[dict[str, str]] = []
    for info in view.runs.sorted():
        if (case is not None and info.case != case) or (wanted and info.run not in wanted):
            continue
        if info.invalidated is not None:
            skipped.append(
                {"run": info.run, "case": info.case, "reason": f"invalidated: {info.invalidated}"}
            )
            continue
        if info.status != "completed":
            why = "still running" if info.status is None else f"status {info.status}"
            skipped.append({"run": info.run, "case": info.case, "reason": why})
            continue
        node = view.dag.node(info.case)
        merged: dict[str, Any] = dict(node.params or {}) if node is not None else {}
        merged.update(info.config or {})
        attrs[info.run] = merged
        final[info.run] = {}
        case_of[info.run] = info.case
    _fill_finals(view, fields, final)
    return final, attrs, case_of, skipped


def _fill_finals(view: StudyView, fields: Sequence[str], final: dict[str, dict[str, Any]]) -> None:
    table = view.final_table()
    names_wanted = set(fields)
    wanted = {m: i for i, m in enumerate(table.metrics) if m in names_wanted}
    if not wanted or not final or len(table.run) == 0:
        return
    sel = np.flatnonzero(np.isin(table.metric, np.fromiter(wanted.values(), np.int64)))
    names = table.metrics
    runs = table.runs
    for r, m, v in zip(
        table.run[sel].tolist(), table.metric[sel].tolist(), table.value[sel].tolist()
    ):
        bucket = final.get(runs[r])
        if bucket is not None:
            bucket[names[m]] = v


def check_study(
    view: StudyView,
    rules: Sequence[Rule],
    *,
    case: str | None = None,
    runs: Sequence[str] = (),
    rules_time_unit: str | None = None,
    rules_source: str | None = None,
) -> StudyCheck:
    """Evaluate ``rules`` on the counted runs of ``view`` (of ``case``); see ``check_runs``.

    Raises ``ProjectionError`` for an unknown case or run, ``ValueError`` for a time unit that
    ``parse_time_unit`` refuses.
    """
    fields = sorted({r.field for r in rules})
    final, attrs, case_of, skipped = check_inputs(view, fields, case=case, runs=runs)
    report = check_runs(final, rules, attrs=attrs, rules_time_unit=rules_time_unit)
    return StudyCheck(
        view.study, view.as_of, case, rules_source, report, case_of, skipped, sorted(set(runs))
    )
