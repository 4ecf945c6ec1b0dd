"""``compare`` over a query: two cases against each other, or every pair of a list.

The tests are in ``compare``; this module resolves case names and globs against the
study (so a typo is an error listing the cases, not an empty sample) and pairs runs by
seed for the paired tests.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from . import compare as _compare
from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Exclusion, Query, QueryError, QueryFrame, same_value
from .report_inputs import (
    all_exclusions,
    group_labels,
    prepare,
    resolve_config,
    settings_of,
    usable_values,
)
from .result import AnalyticsResult
from .stats import AnalyticsError

TESTS = ("welch", "student", "mannwhitney")
# the columns a table for people starts with, for two cases and for pairs of cases alike
_SHOWN = ("a", "b", "n_a", "n_b", "mean_a", "mean_b", "statistic")
# the table of a two-sided comparison (two cases, or two groups of cases)
_TWO_SIDED_KEYS = (
    "a", "b", "test", "method", "n_a", "n_b", "mean_a", "mean_b", "estimate",
    "ci_low", "ci_high", "statistic", "df", "p_value", "effect_size", "effect_name",
)  # fmt: skip
_TWO_SIDED_TYPES = {
    k: "str" if k in ("a", "b", "test", "method", "effect_name") else "float"
    for k in _TWO_SIDED_KEYS
} | {"n_a": "int", "n_b": "int"}


def _case_values(rows: Columns, x: np.ndarray, case: str) -> tuple[np.ndarray, np.ndarray]:
    sel = rows["case"] == case
    return x[sel], np.flatnonzero(sel)


def _check_case(frame: QueryFrame, case: str) -> None:
    if case not in frame.view.dag.nodes:
        known = sorted(frame.view.dag.nodes)
        shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
        raise QueryError(
            f"study {frame.study!r} has no case {case!r} at seq {frame.as_of} (cases: {shown})"
        )
    if case not in frame.cases:
        raise QueryError(f"case {case!r} is not selected by the query {frame.query!r}")


def _expand_cases(frame: QueryFrame, items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if any(ch in item for ch in "*?["):
            hits = [c for c in frame.cases if fnmatch.fnmatchcase(c, item)]
            if not hits:
                raise QueryError(f"no selected case matches {item!r}")
            out.extend(hits)
        else:
            _check_case(frame, item)
            out.append(item)
    return list(dict.fromkeys(out))


def compare(
    query: Query,
    *,
    a: str | None = None,
    b: str | None = None,
    cases: Sequence[str] | None = None,
    test: str = "welch",
    paired: bool = False,
    metric: str | None = None,
    confidence: float | None = None,
    config: AnalyticsConfig | None = None,
    by: str | None = None,
) -> AnalyticsResult:
    """Case ``a`` against case ``b`` (Welch, Student or Mann-Whitney; ``paired`` pairs
    runs by seed: paired t or Wilcoxon signed-rank), or every pair of ``cases`` (ids or
    globs) with Holm's correction. With ``by`` (``param:NAME``, ``stage``, ``eco``,
    ``eco_class``, ``host``), ``a`` and ``b`` are two values of it instead, and the
    runs of every selected case with that value form each side (``--by param:batch
    --a 16 --b 64``): a value is read as JSON when it parses (``16`` matches the number
    16 and 16.0), else as text.

    JSON (a/b): ``{"test", "statistic", "p_value", "df", "effect_size", "n_a", "n_b",
    "mean_a", "mean_b", "a", "b", ...}`` (with ``by``: also ``"by"``, ``"cases_a"``,
    ``"cases_b"``); (cases): ``{"pairs": [{"a", "b", "statistic", "p_value",
    "p_adjusted", ...}], "test", ...}``.
    """
    if test not in TESTS:
        raise AnalyticsError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    if cases is not None and (a is not None or b is not None):
        raise AnalyticsError("give either two cases (a and b) or a list of cases, not both")
    if cases is None and (a is None or b is None):
        raise AnalyticsError("name the two cases to compare (a and b), or a list of cases")
    if by is not None and (cases is not None or paired):
        raise AnalyticsError(
            "with --by, give the two values to compare as --a and --b (no --cases, no "
            "--paired: runs of several cases do not pair by seed)"
        )
    cfg = resolve_config(config, confidence=confidence)
    query, frame, name = prepare(query, metric)
    if frame.per_case:
        raise QueryError("compare tests runs against runs: drop the agg from the query's metric")
    rows, x, dropped = usable_values(frame, name)
    exclusions = all_exclusions(frame, dropped)
    if by is not None:
        assert a is not None and b is not None
        return _by_groups(query, frame, rows, x, name, by, (a, b), test, cfg, exclusions)
    if cases is not None:
        if paired:
            raise AnalyticsError("paired tests compare two cases; drop paired or pass a and b")
        return _pairwise(query, frame, rows, x, name, cases, test, cfg, exclusions)
    assert a is not None and b is not None
    _check_case(frame, a)
    _check_case(frame, b)
    xa, ia = _case_values(rows, x, a)
    xb, ib = _case_values(rows, x, b)
    extra: dict[str, Any] = {}
    if paired:
        pairing = _compare.pair_by_seed(rows["seed"][ia], xa, rows["seed"][ib], xb)
        if test == "mannwhitney":
            res = _compare.wilcoxon(pairing.a, pairing.b)
        else:
            res = _compare.paired_t(pairing.a, pairing.b, confidence=cfg.confidence)
        extra = {
            "paired_by": "seed",
            "seeds": pairing.seeds.tolist(),
            "unpaired_a": pairing.unpaired_a,
            "unpaired_b": pairing.unpaired_b,
        }
    elif test == "welch":
        res = _compare.welch(xa, xb, confidence=cfg.confidence)
    elif test == "student":
        res = _compare.student(xa, xb, confidence=cfg.confidence)
    else:
        res = _compare.mannwhitney(xa, xb)
    d = res.to_dict()
    d.update({"a": a, "b": b, "metric": name, "paired": paired, **extra})
    warns = list(res.warnings)
    if paired and (extra["unpaired_a"] or extra["unpaired_b"]):
        warns.append(
            f"runs without a partner of the same seed left out: {extra['unpaired_a']} of "
            f"{a}, {extra['unpaired_b']} of {b}"
        )
    return AnalyticsResult(
        kind="compare",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.take(np.concatenate([ia, ib])),
        table=Columns.from_rows([d], _TWO_SIDED_TYPES),
        data=d,
        exclusions=[e for e in exclusions if e.case in (a, b)],
        settings=settings_of(cfg, "confidence"),
        warnings=warns,
        title=f"{res.test} test of {name}: {a} vs {b}",
        display={"": [*_SHOWN, "df", "p_value", "effect_size"]},
    )


def _label_matches(labels: np.ndarray, text: str) -> np.ndarray:
    """Which group labels equal ``text`` read as JSON (numbers by value), or as text."""
    import json

    try:
        wanted: Any = json.loads(text)
    except ValueError:
        wanted = text
    return np.fromiter(
        (
            v is not None and (same_value(v, wanted) or (isinstance(v, str) and v == text))
            for v in labels.tolist()
        ),
        bool,
        len(labels),
    )


def _by_groups(
    query: Query,
    frame: QueryFrame,
    rows: Columns,
    x: np.ndarray,
    name: str,
    by: str,
    values: tuple[str, str],
    test: str,
    cfg: AnalyticsConfig,
    exclusions: list[Exclusion],
) -> AnalyticsResult:
    """The runs of the cases whose ``by`` label is ``values[0]`` against those whose
    label is ``values[1]``."""
    labels = group_labels(rows, by, frame)
    sides = [_label_matches(labels, v) for v in values]
    for v, side in zip(values, sides):
        if not side.any():
            present, _ = _stats.group_codes(labels)
            shown = ", ".join(str(p) for p in present if p is not None) or "none"
            raise QueryError(f"no selected run has {by} = {v} (values: {shown})")
    if (sides[0] & sides[1]).any():
        raise QueryError(f"{values[0]} and {values[1]} name the same {by}; compare two others")
    xa, xb = x[sides[0]], x[sides[1]]
    if test == "welch":
        res = _compare.welch(xa, xb, confidence=cfg.confidence)
    elif test == "student":
        res = _compare.student(xa, xb, confidence=cfg.confidence)
    else:
        res = _compare.mannwhitney(xa, xb)
    d = res.to_dict()
    cases = rows["case"]
    d.update(
        {
            "a": values[0],
            "b": values[1],
            "by": by,
            "metric": name,
            "paired": False,
            "cases_a": sorted(set(cases[sides[0]].tolist())),
            "cases_b": sorted(set(cases[sides[1]].tolist())),
        }
    )
    chosen = set(d["cases_a"]) | set(d["cases_b"])
    return AnalyticsResult(
        kind="compare",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.take(np.flatnonzero(sides[0] | sides[1])),
        table=Columns.from_rows([d], _TWO_SIDED_TYPES),
        data=d,
        exclusions=[e for e in exclusions if e.case in chosen],
        settings=settings_of(cfg, "confidence"),
        warnings=list(res.warnings),
        title=f"{res.test} test of {name}: {by} {values[0]} vs {values[1]}",
        display={"": [*_SHOWN, "df", "p_value", "effect_size"]},
    )


def _pairwise(
    query: Query,
    frame: QueryFrame,
    rows: Columns,
    x: np.ndarray,
    name: str,
    cases: Sequence[str],
    test: str,
    cfg: AnalyticsConfig,
    exclusions: list[Exclusion],
) -> AnalyticsResult:
    chosen = _expand_cases(frame, cases)
    if len(chosen) < 2:
        raise AnalyticsError(f"pairwise comparison needs at least 2 cases, got {chosen}")
    wanted = set(chosen)
    sel = np.fromiter((c in wanted for c in rows["case"].tolist()), bool, len(rows))
    split = _stats.split_groups(x[sel], rows["case"][sel])
    groups = {c: split.get(c, np.empty(0)) for c in chosen}
    res = _compare.pairwise(groups, test=test)
    # PairRow fields are builtins already (NaN was made None): a shallow copy suffices
    pairs = [msgspec.structs.asdict(p) for p in res.pairs]
    table = Columns.from_rows(
        pairs,
        {
            "a": "str",
            "b": "str",
            "n_a": "int",
            "n_b": "int",
            "mean_a": "float",
            "mean_b": "float",
            "statistic": "float",
            "df": "float",
            "p_value": "float",
            "p_adjusted": "float",
            "effect_size": "float",
            "method": "str",
        },
    )
    return AnalyticsResult(
        kind="compare",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.take(np.flatnonzero(sel)),
        table=table,
        data={
            "metric": name,
            "test": test,
            "adjustment": res.adjustment,
            "effect_name": res.effect_name,
            "groups": list(res.groups),
            "pairs": pairs,
        },
        exclusions=[e for e in exclusions if e.case in wanted],
        settings=settings_of(cfg, "confidence"),
        warnings=res.warnings,
        title=f"pairwise {test} tests of {name} over {len(chosen)} cases (Holm-adjusted)",
        display={"": [*_SHOWN, "p_value", "p_adjusted", "effect_size"]},
    )
