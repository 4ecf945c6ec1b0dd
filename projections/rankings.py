"""Rankings: which cases are best under a policy, which are infeasible, and why.

A *policy* is one or more keys (metric and direction) compared lexicographically, an
aggregate across a case's runs, constraints, and optionally ``top`` K survivors and
Pareto fronts. Only completed, non-invalidated runs count; each contributes its final
value in force (a later final of the same run and metric supersedes the earlier).

Per case and metric, over the runs that have that metric:

- ``mean`` and ``median`` propagate NaN (one diverged run makes the case's aggregate
  NaN, so the case is listed as unranked rather than ranked on its good runs);
- ``best`` is the minimum or maximum by the key's direction, ignoring NaN (NaN only
  when every value is NaN); a constraint's metric that is not a key takes ``min``;
- ``last`` is the value recorded last (highest seq) among those runs.

Constraints (``--require``) are evaluated on the case's aggregate of that metric, with
the same ``agg`` as the ranking: under ``mean``, ``drc_errors==0`` holds when the mean
over the case's runs is 0; under ``best``, when its best run has 0. NaN or a missing
metric breaks any constraint (``!=`` included).

A case is unranked, with its reason, in this order of precedence: ``no completed run``;
``infeasible: <constraints broken>``; ``metric missing: <metric>``; ``NaN aggregate:
<metric>``. Ranked cases are sorted by their keys (each turned into "smaller is
better"), then by case id in code-point order — so ties always break the same way and
ranks are 1..n without gaps. With ``pareto``, the non-dominated front number (1 is the
Pareto front) sorts first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import msgspec
import numpy as np

from .comparisons import COMPARISONS
from .errors import PolicyError as PolicyError
from .numbers import number_text

if TYPE_CHECKING:
    from .dag import StudyDag
    from .runs import StudyRuns

__all__ = [
    "AGGREGATES",
    "COUNTED",
    "Constraint",
    "Key",
    "Policy",
    "PolicyError",
    "RankRow",
    "Ranking",
    "RunTable",
    "Unranked",
    "aggregate",
    "pareto_fronts",
    "parse_by",
    "parse_require",
    "rank_cases",
    "rank_study",
    "resolve_policy",
]

AGGREGATES = ("mean", "median", "best", "last")
Direction = Literal["min", "max"]


class Key(msgspec.Struct, frozen=True):
    metric: str
    direction: Direction

    @property
    def text(self) -> str:
        return f"{self.metric}:{self.direction}"

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


_REQUIRE = re.compile(
    r"\s*(?P<metric>[^=!<>\s](?:[^=!<>]*[^=!<>\s])?)\s*"
    r"(?P<op>==|!=|>=|<=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*"
)


class Constraint(msgspec.Struct, frozen=True):
    metric: str
    op: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.metric}{self.op}{number_text(self.value)}"

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` satisfy the constraint; NaN never does (not even ``!=``)."""
        with np.errstate(invalid="ignore"):
            return ~np.isnan(values) & COMPARISONS[self.op](values, self.value)


def parse_require(expr: str) -> Constraint:
    """``'drc_errors==0'`` -> Constraint; operators ``== != >= <= > <``, a decimal number.

    Raises ``PolicyError`` naming the expression and the expected form.
    """
    m = _REQUIRE.fullmatch(expr)
    if m is None:
        raise PolicyError(
            f"cannot read the constraint {expr!r}: write METRIC OP NUMBER with OP one of "
            "==, !=, >=, <=, >, < and a decimal number (e.g. 'drc_errors==0', 'wns_ps>=0')"
        )
    return Constraint(m["metric"], m["op"], float(m["value"]))


class Policy(msgspec.Struct, frozen=True):
    keys: tuple[Key, ...]
    agg: str = "mean"
    require: tuple[Constraint, ...] = ()
    top: int | None = None
    pareto: bool = False
    source: str = "metric"  # "objectives" | "metric" | "by"

    @property
    def text(self) -> str:
        out = ",".join(k.text for k in self.keys) + f" ({self.agg})"
        if self.require:
            out += " require " + ", ".join(c.text for c in self.require)
        if self.pareto:
            out += " pareto"
        if self.top is not None:
            out += f" top {self.top}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": [k.to_dict() for k in self.keys],
            "agg": self.agg,
            "require": [c.text for c in self.require],
            "top": self.top,
            "pareto": self.pareto,
            "source": self.source,
        }


def _objective_direction(metric: str, objectives: Sequence[tuple[str, str]]) -> str | None:
    for name, direction in objectives:
        if name == metric:
            return direction
    return None


def parse_by(text: str, objectives: Sequence[tuple[str, str]] = ()) -> list[Key]:
    """``'qor:max,area:min'`` -> keys. A key without ``:min``/``:max`` takes the
    direction of the study objective of that name. Raises ``PolicyError``."""
    keys: list[Key] = []
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise PolicyError(
                f"empty key in {text!r}: write keys as METRIC:max or METRIC:min separated "
                "by commas (e.g. 'qor:max,area:min')"
            )
        metric, sep, direction = token.rpartition(":")
        if not sep or direction not in ("min", "max"):
            metric = token
            found = _objective_direction(metric, objectives)
            if found is None:
                raise PolicyError(
                    f"no direction for {metric!r} in {text!r}: it is not one of the study's "
                    f"objectives; write {metric}:max or {metric}:min"
                )
            direction = found
        if not metric:
            raise PolicyError(f"empty metric name in {token!r} of {text!r}")
        if any(k.metric == metric for k in keys):
            raise PolicyError(f"metric {metric!r} appears twice in {text!r}")
        keys.append(Key(metric, direction))  # type: ignore[arg-type]
    return keys


def resolve_policy(
    objectives: Sequence[tuple[str, str]],
    *,
    metric: str | None = None,
    direction: str | None = None,
    by: str | None = None,
    agg: str = "mean",
    require: Sequence[str | Constraint] = (),
    top: int | None = None,
    pareto: bool = False,
) -> Policy:
    """The policy a ``rank`` call asks for, checked.

    No ``metric`` and no ``by``: the study's objectives, in order. ``metric``: its
    objective's direction, unless ``direction`` is given (required when the metric is
    not an objective). ``by``: lexicographic keys. Raises ``PolicyError``.
    """
    if agg not in AGGREGATES:
        raise PolicyError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
    if direction is not None and direction not in ("min", "max"):
        raise PolicyError(f"unknown direction {direction!r}; use min or max")
    if top is not None and top < 1:
        raise PolicyError(f"top must be at least 1, got {top}")
    if by is not None and metric is not None:
        raise PolicyError("give either a metric (with its direction) or --by keys, not both")
    if direction is not None and metric is None:
        raise PolicyError(
            "a direction needs a metric: pass --metric M --direction "
            f"{direction} (or --by M:{direction})"
        )
    if by is not None:
        keys = parse_by(by, objectives)
        source = "by"
    elif metric is not None:
        found = direction or _objective_direction(metric, objectives)
        if found is None:
            names = ", ".join(f"{m}:{d}" for m, d in objectives) or "none"
            raise PolicyError(
                f"metric {metric!r} is not an objective of the study (objectives: {names}); "
                "pass --direction min or --direction max"
            )
        keys = [Key(metric, found)]  # type: ignore[arg-type]
        source = "metric"
    else:
        if not objectives:
            raise PolicyError(
                "the study declares no objectives to rank by; pass --metric M --direction "
                "min|max, or --by m1:max,m2:min"
            )
        keys = [Key(m, d) for m, d in objectives]  # type: ignore[arg-type]
        source = "objectives"
    constraints = tuple(c if isinstance(c, Constraint) else parse_require(c) for c in require)
    return Policy(tuple(keys), agg, constraints, top, pareto, source)


# ---------------------------------------------------------------------------- the core


class RunTable(NamedTuple):
    """The runs a ranking may draw on, one entry per run (any order)."""

    case: Sequence[str]
    status: Sequence[str | None]
    invalidated: Sequence[bool]


# metric -> (run positions into the RunTable, final values, their seqs)
Finals = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
FinalsOf = Callable[[Iterable[str], Sequence[str]], Finals]
"""(metrics, run ids) -> ``Finals`` of those runs: ``StudyView.finals_by_metric``."""


class RankRow(msgspec.Struct, kw_only=True):
    rank: int
    case: str
    score: float | list[float]
    runs: int
    survivor: bool | None = None
    front: int | None = None
    stage: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rank": self.rank,
            "case": self.case,
            "score": self.score,
            "runs": self.runs,
        }
        for name in ("survivor", "front", "stage"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class Unranked(msgspec.Struct, kw_only=True):
    case: str
    reason: str
    stage: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"case": self.case, "reason": self.reason}
        if self.stage is not None:
            out["stage"] = self.stage
        return out


class Ranking(msgspec.Struct, kw_only=True):
    study: str | None
    stage: int | None
    as_of: int | None
    policy: Policy
    rows: list[RankRow]
    unranked: list[Unranked]
    #: Which cases and runs were ranked, when not the whole stage's completed runs
    #: (``rank --case/--where/--status``): ``{"cases", "where", "statuses"}``.
    selection: dict[str, list[str]] | None = None

    def survivors(self) -> list[str]:
        """The cases marked survivor (the top K), in rank order."""
        return [r.case for r in self.rows if r.survivor]

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "stage": self.stage,
            "as_of": self.as_of,
            "policy": self.policy.to_dict(),
            "ranking": [r.to_dict() for r in self.rows],
            "unranked": [u.to_dict() for u in self.unranked],
        } | ({} if self.selection is None else {"selection": self.selection})


def aggregate(
    case_pos: np.ndarray,
    values: np.ndarray,
    seqs: np.ndarray,
    n_cases: int,
    agg: str,
    direction: str = "min",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-case aggregate of per-run values: (aggregate, has) arrays of ``n_cases``.

    ``case_pos[i]`` is the case of value ``i``; ``has`` is false (and the aggregate
    NaN) for cases without a value.
    """
    counts = np.bincount(case_pos, minlength=n_cases)
    has = counts > 0
    out = np.full(n_cases, np.nan)
    if not len(values):
        return out, has
    if agg == "mean":
        # Summed in value order within each case, not log order: the same runs held in
        # another order (two hosts synced either way round, a merge) give the same bits.
        by_value = np.lexsort((values, case_pos))
        sums = np.bincount(case_pos[by_value], weights=values[by_value], minlength=n_cases)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[has] = sums[has] / counts[has]
        return out, has
    if agg == "last":
        order = np.lexsort((seqs, case_pos))
        ends = np.cumsum(counts)[has] - 1
        out[has] = values[order][ends]
        return out, has
    order = np.lexsort((values, case_pos))  # NaN sorts last within a case
    v = values[order]
    starts = (np.cumsum(counts) - counts)[has]
    k = counts[has]
    if agg == "median":
        nan_any = np.bincount(case_pos, weights=np.isnan(values), minlength=n_cases)[has] > 0
        odd = v[starts + k // 2]
        lo = v[starts + (k - 1) // 2]
        with np.errstate(invalid="ignore", over="ignore"):
            even = (lo + odd) / 2
        med = np.where(k % 2 == 1, odd, even)
        med[nan_any] = np.nan
        out[has] = med
        return out, has
    if agg == "best":
        reduce = np.fmin if direction == "min" else np.fmax
        out[has] = reduce.reduceat(v, starts)
        return out, has
    raise PolicyError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")


def pareto_fronts(points: np.ndarray, *, block: int = 1024) -> np.ndarray:
    """Front number (1 = non-dominated) of each row of ``points``, every column to be
    minimised. Equal points share a front. O(n²·m) time, dominance counted in row
    blocks so memory stays O(block·n)."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    fronts = np.zeros(n, np.int64)
    if n == 0:
        return fronts
    dominated_by = np.zeros(n, np.int64)  # how many points dominate each point
    dominates: list[np.ndarray] = []  # per point, whom it dominates
    for lo in range(0, n, block):
        a = pts[lo : lo + block, None, :]
        # (block, n) booleans; numpy's stubs type all(axis)/any(axis) as a scalar or
        # an array, not knowing that a reduced 3-D array stays an array.
        dom = cast(
            "np.ndarray[Any, np.dtype[np.bool_]]",
            (a <= pts[None, :, :]).all(-1) & (a < pts[None, :, :]).any(-1),
        )
        dominated_by += dom.sum(0)
        dominates.extend(np.flatnonzero(row) for row in dom)
    current = np.flatnonzero(dominated_by == 0)
    front = 1
    while current.size:
        fronts[current] = front
        nxt: list[int] = []
        for i in current:
            targets = dominates[i]
            dominated_by[targets] -= 1
            nxt.extend(int(j) for j in targets[dominated_by[targets] == 0])
        current = np.unique(np.asarray(nxt, np.int64))
        front += 1
    return fronts


#: The runs a ranking draws on unless told otherwise (docs/architecture.md, Projections: runs that count).
COUNTED = ("completed",)


def _no_run_reason(statuses: list[str], counted: Sequence[str] = COUNTED) -> str:
    head = (
        "no completed run"
        if tuple(counted) == COUNTED
        else f"no run with status {' or '.join(counted)}"
    )
    if not statuses:
        return f"{head} (no runs)"
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return f"{head} (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")"


def rank_cases(
    cases: Sequence[str],
    runs: RunTable,
    finals: Finals,
    policy: Policy,
    *,
    study: str | None = None,
    stage: int | None = None,
    as_of: int | None = None,
    stages: Mapping[str, int] | None = None,
    counted: Sequence[str] = COUNTED,
) -> Ranking:
    """Rank ``cases`` from plain arrays — the whole algorithm, with no ledger in sight.

    ``finals[metric]`` holds, for final values in force, the position of each value's
    run in ``runs``, the value and its seq. ``stages`` (case -> stage) adds a stage to
    each row. ``counted``: the run statuses whose final values count (``running`` for
    a run not finished); invalidated runs never count.
    """
    scores = _CaseScores(cases, runs, finals, policy, counted)
    reason = scores.reasons()
    ranked = np.array([i for i, why in enumerate(reason) if why is None], np.int64)
    order, fronts = scores.order(ranked)

    def stage_of(i: int) -> int | None:
        return stages.get(scores.names[i]) if stages is not None else None

    rows = [
        RankRow(
            rank=r,
            case=scores.names[i],
            score=scores.score(i),
            runs=int(scores.n_aggregated[i]),
            survivor=(r <= policy.top) if policy.top is not None else None,
            front=int(fronts[j]) if fronts is not None else None,
            stage=stage_of(i),
        )
        for r, (j, i) in enumerate(zip(order.tolist(), ranked[order].tolist()), start=1)
    ]
    unranked = [
        Unranked(case=scores.names[i], reason=why, stage=stage_of(i))
        for i, why in enumerate(reason)
        if why is not None
    ]
    return Ranking(
        study=study, stage=stage, as_of=as_of, policy=policy, rows=rows, unranked=unranked
    )


class _CaseScores:
    """The aggregates a ranking compares, per case (in case-id order), from the runs
    that count; and what keeps a case unranked."""

    def __init__(
        self,
        cases: Sequence[str],
        runs: RunTable,
        finals: Finals,
        policy: Policy,
        counted: Sequence[str],
    ) -> None:
        self.names = sorted(set(cases))
        self.runs, self.finals, self.policy, self.counted = runs, finals, policy, counted
        pos = {c: i for i, c in enumerate(self.names)}
        self.run_case = np.fromiter((pos.get(c, -1) for c in runs.case), np.int64, len(runs.case))
        wanted = frozenset(counted)
        self.ok = np.fromiter(
            (
                (s or "running") in wanted and not inv
                for s, inv in zip(runs.status, runs.invalidated)
            ),
            bool,
            len(runs.case),
        ) & (self.run_case >= 0)
        self.n_runs = self._count(self.ok)
        self._cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.keys = [self.agg_of(k.metric, k.direction) for k in policy.keys]
        # ``runs`` is the number of completed runs aggregated (docs/architecture.md,
        # Command output): those with a final value of the first key, not every
        # completed run of the case.
        first = np.asarray(finals.get(policy.keys[0].metric, (np.empty(0, np.int64),))[0])
        first = first.astype(np.int64, copy=False)
        keep = self.ok[first] if len(first) else np.zeros(0, bool)
        self.n_aggregated = self._count(keep, first)

    def _count(self, mask: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Per case, how many of the runs (at ``idx``) ``mask`` keeps."""
        n = len(self.names)
        if not n:
            return np.zeros(0, np.int64)
        case = self.run_case if idx is None else self.run_case[idx]
        return np.bincount(case[mask], minlength=n)

    def agg_of(self, metric: str, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """(aggregate, has a value) per case of ``metric`` under the policy's ``agg``."""
        key = (metric, direction if self.policy.agg == "best" else "")
        if key not in self._cache:
            empty = (np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
            idx, vals, seqs = self.finals.get(metric, empty)
            idx = np.asarray(idx, np.int64)
            keep = self.ok[idx] if len(idx) else np.zeros(0, bool)
            self._cache[key] = aggregate(
                self.run_case[idx][keep],
                np.asarray(vals, np.float64)[keep],
                np.asarray(seqs, np.int64)[keep],
                len(self.names),
                self.policy.agg,
                direction,
            )
        return self._cache[key]

    def score(self, i: int) -> float | list[float]:
        scores = [float(v[i]) for v, _ in self.keys]
        return scores[0] if len(scores) == 1 else scores

    def _broken(self) -> list[list[str]]:
        """Per case, the constraints its aggregate breaks (with the value)."""
        policy = self.policy
        directions = {k.metric: k.direction for k in policy.keys}
        broken: list[list[str]] = [[] for _ in self.names]
        for c in policy.require:
            vals, has = self.agg_of(c.metric, directions.get(c.metric, "min"))
            for i in np.flatnonzero(~c.holds(vals)):
                detail = f"{policy.agg} {number_text(float(vals[i]))}" if has[i] else "no value"
                broken[i].append(f"{c.text} ({detail})")
        return broken

    def reasons(self) -> list[str | None]:
        """Per case, why it is unranked (None: ranked), in the module doc's precedence."""
        broken = self._broken()
        statuses = self._statuses()
        out: list[str | None] = []
        for i in range(len(self.names)):
            if self.n_runs[i] == 0:
                out.append(_no_run_reason(statuses.get(i, []), self.counted))
            elif broken[i]:
                out.append("infeasible: " + ", ".join(broken[i]))
            else:
                out.append(self._value_problem(i))
        return out

    def _value_problem(self, i: int) -> str | None:
        keys = list(zip(self.policy.keys, self.keys))
        missing = [k.metric for k, (_, has) in keys if not has[i]]
        if missing:
            return "metric missing: " + ", ".join(missing)
        nans = [k.metric for k, (v, _) in keys if math.isnan(v[i])]
        if nans:
            return "NaN aggregate: " + ", ".join(f"{m} ({self.policy.agg})" for m in nans)
        return None

    def _statuses(self) -> dict[int, list[str]]:
        """Per case without a counted run, what its runs were (for the reason)."""
        if not (self.n_runs == 0).any():
            return {}
        out: dict[int, list[str]] = {}
        for c, s, inv in zip(self.run_case.tolist(), self.runs.status, self.runs.invalidated):
            if c >= 0:
                out.setdefault(c, []).append("invalidated" if inv else (s or "running"))
        return out

    def order(self, ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Positions into ``ranked`` in rank order, and each one's Pareto front (or
        None): keys made "smaller is better", fronts first, ties by case id."""
        if not len(ranked):
            return np.empty(0, np.int64), None
        cols = [
            (v[ranked] if k.direction == "min" else -v[ranked])
            for k, (v, _) in zip(self.policy.keys, self.keys)
        ]
        sort_keys: list[np.ndarray] = [ranked]  # case id breaks ties (names are sorted)
        sort_keys.extend(reversed(cols))
        fronts = None
        if self.policy.pareto:
            fronts = pareto_fronts(np.column_stack(cols))
            sort_keys.append(fronts)
        return np.lexsort(sort_keys), fronts


def rank_study(
    dag: StudyDag,
    runs: StudyRuns | None,
    finals_of: FinalsOf,
    policy: Policy,
    stage: int | None = None,
    *,
    study: str,
    as_of: int,
    cases: Collection[str] | None = None,
    counted: Sequence[str] = COUNTED,
) -> Ranking:
    """Rank one study's cases (of ``stage``, or all; only ``cases`` when given) from its
    projections: its DAG, its runs and ``finals_of`` (``StudyView.finals_by_metric``).
    ``counted``: the run statuses that count (see :func:`rank_cases`)."""
    nodes = dag.cases(stage)
    if cases is not None:
        nodes = [n for n in nodes if n.case in cases]
    run_list = list(runs.runs.values()) if runs is not None else []
    table = RunTable(
        [r.case for r in run_list],
        [r.status for r in run_list],
        [r.invalidated is not None for r in run_list],
    )
    finals = finals_of(
        {k.metric for k in policy.keys} | {c.metric for c in policy.require},
        [r.run for r in run_list],
    )
    return rank_cases(
        [n.case for n in nodes],
        table,
        finals,
        policy,
        study=study,
        stage=stage,
        as_of=as_of,
        stages={n.case: n.stage for n in nodes},
        counted=counted,
    )
