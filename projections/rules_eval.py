"""Rules evaluation: pass/fail rules over each run's final metrics (OpenROAD ``rules*.json``).

A pure function of its inputs: the caller (``ledger check``, through
``projections.rules_study``) folds the study into ``{run_id: {metric: value}}`` (the
final values in force) plus each run's attributes (its ``config`` merged with its
case's params), and gets back a report.

Rules come in the two forms OpenROAD-flow-scripts has used, both read here:

- current: ``{"<field>": {"value": V, "compare": "<=", "level": "warning"?}}``
- older:   ``{"rules": [{"field": F, "value": V, "compare": "<="}]}``

Per run and rule the outcome is ``pass``, ``fail``, ``warn`` (a failed rule of level
``warning``, which never fails the run) or ``not_evaluable`` (the run lacks the metric,
the compare string is not an operator, or the rule's value is not comparable with the
run's). A run fails when any rule of level error fails; NaN fails every comparison.

Timing: rules are written per platform, so by default values are compared as
recorded; with ``rules_time_unit`` ``check_runs`` first converts each run's timing
metrics into the rules' unit (``ledger.importers.orfs_time``: which metrics are timing,
the unit each run reports in, read or assumed from its platform) and reports per run
which unit was used.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.importers.orfs_time import TimeUnit, normalise_timing
from ledger.numbers import is_number
from projections.errors import RulesError as RulesError

from .comparisons import COMPARISONS

__all__ = [
    "CheckReport",
    "Rule",
    "RuleResult",
    "RulesError",
    "RunCheck",
    "check_runs",
    "evaluate",
    "load_rules",
    "parse_rules",
]

OPERATORS = ("<=", ">=", "==", "!=", "<", ">")


# -- rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    field: str
    compare: str
    value: Any
    level: str = "error"


def parse_rules(obj: Any, *, source: str = "<rules>") -> list[Rule]:
    """Rules in either OpenROAD form, in file order. Raises ``RulesError`` naming the rule."""
    if isinstance(obj, dict) and isinstance(obj.get("rules"), list) and len(obj) == 1:
        items = []
        for i, r in enumerate(obj["rules"]):
            if not isinstance(r, dict) or not isinstance(r.get("field"), str):
                raise RulesError(f"{source}: rules[{i}]: expected an object with a 'field'")
            items.append((r["field"], r, f"rules[{i}]"))
    elif isinstance(obj, dict):
        items = [(k, v, k) for k, v in obj.items()]
    else:
        raise RulesError(f"{source}: expected a JSON object of rules, got {type(obj).__name__}")
    out = []
    for name, spec, where in items:
        if not isinstance(spec, dict) or "value" not in spec or "compare" not in spec:
            raise RulesError(
                f"{source}: {where}: a rule needs 'value' and 'compare' "
                '(e.g. {"value": 0, "compare": "<="})'
            )
        level = spec.get("level", "error")
        if level not in ("error", "warning"):
            raise RulesError(f"{source}: {where}: level {level!r} is not 'warning' or 'error'")
        out.append(Rule(name, str(spec["compare"]), spec["value"], level))
    return out


def load_rules(path: str | os.PathLike[str]) -> list[Rule]:
    """Read a rules file. Raises ``RulesError`` for an unreadable or malformed file."""
    try:
        with open(path, "rb") as fh:
            obj = json.load(fh)
    except OSError as exc:
        raise RulesError(f"{os.fspath(path)}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise RulesError(f"{os.fspath(path)}: invalid JSON: {exc}") from None
    return parse_rules(obj, source=os.fspath(path))


# -- evaluation --------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    field: str
    compare: str
    limit: Any
    level: str
    outcome: str  # pass | fail | warn | not_evaluable
    actual: Any = None
    reason: str | None = None


@dataclass
class RunCheck:
    run: str
    status: str  # pass | fail | warn | not_evaluable
    results: list[RuleResult]
    time_unit: TimeUnit | None = None

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "fail"]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "warn"]

    @property
    def not_evaluable(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "not_evaluable"]


@dataclass
class CheckReport:
    ok: bool
    runs: list[RunCheck]
    rules: list[Rule]
    counts: dict[str, int] = field(default_factory=dict)
    time_unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``check --json`` shape; non-finite actual values spelled as in docs/architecture.md, Events."""

        def rr(r: RuleResult) -> dict[str, Any]:
            d: dict[str, Any] = {
                "field": r.field,
                "compare": r.compare,
                "value": r.limit,
                "level": r.level,
                "actual": _json_num(r.actual),
            }
            if r.reason:
                d["reason"] = r.reason
            return d

        runs = []
        for rc in self.runs:
            item: dict[str, Any] = {
                "run": rc.run,
                "status": rc.status,
                "failed": [rr(r) for r in rc.failed],
                "warnings": [rr(r) for r in rc.warnings],
                "not_evaluable": [rr(r) for r in rc.not_evaluable],
                "passed": sum(1 for r in rc.results if r.outcome == "pass"),
            }
            if rc.time_unit is not None:
                item["time_unit"] = {
                    "unit": rc.time_unit.unit,
                    "assumed": rc.time_unit.assumed,
                    "note": rc.time_unit.note,
                }
            runs.append(item)
        return {
            "ok": self.ok,
            "rules": len(self.rules),
            "time_unit": self.time_unit,
            "counts": dict(self.counts),
            "runs": runs,
        }


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _compare(actual: Any, op: str, limit: Any) -> bool:
    return COMPARISONS[op](actual, limit)


def evaluate(rule: Rule, values: Mapping[str, Any], attrs: Mapping[str, Any]) -> RuleResult:
    """One rule against one run's final values (strings compared only with == and !=)."""

    def res(outcome: str, actual: Any = None, reason: str | None = None) -> RuleResult:
        return RuleResult(rule.field, rule.compare, rule.value, rule.level, outcome, actual, reason)

    if rule.compare not in OPERATORS:
        return res("not_evaluable", reason=f"compare {rule.compare!r} is not an operator")
    if rule.field in values:
        actual = values[rule.field]
    elif isinstance(attrs.get(rule.field), str):
        actual = attrs[rule.field]
    else:
        return res("not_evaluable", reason="the run has no such metric")
    if is_number(actual) and is_number(rule.value):
        ok = _compare(actual, rule.compare, rule.value)
    elif isinstance(actual, str) and isinstance(rule.value, str) and rule.compare in ("==", "!="):
        ok = _compare(actual, rule.compare, rule.value)
    else:
        return res(
            "not_evaluable",
            actual,
            f"cannot compare {type(actual).__name__} {actual!r} {rule.compare} "
            f"{type(rule.value).__name__} {rule.value!r}",
        )
    if ok:
        return res("pass", actual)
    return res("warn" if rule.level == "warning" else "fail", actual)


def check_runs(
    final: Mapping[str, Mapping[str, Any]],
    rules: Sequence[Rule],
    *,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
    rules_time_unit: str | None = None,
) -> CheckReport:
    """Evaluate ``rules`` on each run's final values; runs in code-point order of their ids.

    ``attrs[run]`` (config and case params) supplies string fields and the time unit.
    With ``rules_time_unit`` (e.g. ``"1ps"``) timing metrics are first converted from each
    run's unit (read or assumed, reported per run) into the rules' unit.
    """
    attrs = attrs or {}
    units: dict[str, TimeUnit] = {}
    values_by_run: Mapping[str, Mapping[str, Any]] = final
    if rules_time_unit is not None:
        values_by_run, units = normalise_timing(final, attrs, to=rules_time_unit)
    runs: list[RunCheck] = []
    counts = {"pass": 0, "fail": 0, "warn": 0, "not_evaluable": 0}
    for run in sorted(final):
        results = [evaluate(r, values_by_run[run], attrs.get(run, {})) for r in rules]
        outcomes = {r.outcome for r in results}
        if "fail" in outcomes:
            status = "fail"
        elif "warn" in outcomes:
            status = "warn"
        elif "pass" in outcomes or not results:
            status = "pass"
        else:
            status = "not_evaluable"
        counts[status] += 1
        runs.append(RunCheck(run, status, results, units.get(run)))
    return CheckReport(
        ok=counts["fail"] == 0,
        runs=runs,
        rules=list(rules),
        counts=counts,
        time_unit=rules_time_unit,
    )
