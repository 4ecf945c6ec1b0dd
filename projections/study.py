"""One study as of one seq: the built-in projections, built together, and what they answer.

``load_study(ledger, study, as_of)`` reads only that study's events (after the newest
valid checkpoint at or before ``as_of``) and folds every built-in projection in one
pass; the view then ranks, summarises stages and draws the DAG on demand. This is what
the ``dag`` and ``rank`` commands, and exports, call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ledger import Ledger
from ledger.frames import Frame

from .base import build_many, resolve_as_of
from .builtins import builtin_projections as builtin_projections
from .dag import DagProjection, StudyDag
from .errors import ProjectionError, UnknownStudy
from .metrics import FinalTable, MetricsProjection
from .rankings import Finals, Policy, Ranking, rank_study, resolve_policy
from .runs import RunsProjection, StudyRuns
from .stages import Selection, SelectionsProjection, StageSummary, stage_summaries

# builtin_projections lives in projections.builtins; the re-export keeps old imports working.
__all__ = ["StudyView", "builtin_projections", "load_study", "resolve_study"]


def resolve_study(ledger: Ledger, study: str | None) -> str:
    """``study`` checked against the ledger; with None, the ledger's only study.

    Raises ``UnknownStudy`` (naming the known ones) or ``ProjectionError`` when None is
    ambiguous.
    """
    if study is not None:
        if not ledger.has_study(study):
            raise UnknownStudy(study, ledger.studies())
        return study
    names = ledger.studies()
    if len(names) == 1:
        return names[0]
    if not names:
        raise ProjectionError(
            f"{ledger.path} holds no study yet; append a study_created event first"
        )
    raise ProjectionError(
        f"the ledger holds {len(names)} studies ({', '.join(names)}); pick one with --study"
    )


class StudyView:
    """A study's projections at ``as_of``. Read-only: build a new view to move in time."""

    def __init__(
        self,
        study: str,
        as_of: int,
        dag: DagProjection,
        runs: RunsProjection,
        metrics: MetricsProjection,
        selections: SelectionsProjection,
    ) -> None:
        self.study = study
        self.as_of = as_of
        self.projections = (dag, runs, metrics, selections)
        self.dag: StudyDag = dag.study(study) or StudyDag(study)
        self.runs: StudyRuns = runs.study(study) or StudyRuns(study)
        self.metrics = metrics
        self.selections: list[Selection] = selections.of(study)
        self._finals: FinalTable | None = None

    def __repr__(self) -> str:
        return f"StudyView({self.study!r}, as_of={self.as_of})"

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return self.dag.objectives

    # -- metrics ---------------------------------------------------------------------

    def final_table(self) -> FinalTable:
        if self._finals is None:
            self._finals = self.metrics.final_table(self.study)
        return self._finals

    def finals_by_metric(self, metrics: Iterable[str], run_ids: Sequence[str]) -> Finals:
        """For each metric: positions (into ``run_ids``) of the runs with a final value in
        force, the values and their seqs."""
        table = self.final_table()
        pos_of = {r: i for i, r in enumerate(run_ids)}
        run_pos = np.fromiter(
            (pos_of.get(name, -1) for name in table.runs), np.int64, len(table.runs)
        )
        metric_of = {m: i for i, m in enumerate(table.metrics)}
        out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for m in metrics:
            mi = metric_of.get(m)
            if mi is None:
                continue
            sel = table.metric == mi
            rp = run_pos[table.run[sel]] if len(table.runs) else np.empty(0, np.int64)
            keep = rp >= 0
            out[m] = (rp[keep], table.value[sel][keep], table.seq[sel][keep])
        return out

    # -- rankings and stages ----------------------------------------------------------

    def policy(self, **kwargs: Any) -> Policy:
        """``resolve_policy`` with this study's objectives. Raises ``PolicyError``."""
        return resolve_policy(self.objectives, **kwargs)

    def rank(
        self, stage: int | None = None, policy: Policy | None = None, **kwargs: Any
    ) -> Ranking:
        """Rank the study's cases (of ``stage``, or all). Either a ``policy`` or the
        keyword arguments of ``resolve_policy`` (``metric``, ``direction``, ``by``,
        ``agg``, ``require``, ``top``, ``pareto``); with neither, the objectives."""
        if policy is None:
            policy = self.policy(**kwargs)
        elif kwargs:
            raise ProjectionError("pass either a policy or its parts, not both")
        if stage is not None and stage not in self.dag.stages():
            known = ", ".join(map(str, self.dag.stages())) or "none yet"
            raise ProjectionError(
                f"study {self.study!r} has no case in stage {stage} at seq {self.as_of} "
                f"(stages: {known})"
            )
        return rank_study(
            self.dag,
            self.runs,
            self.finals_by_metric,
            policy,
            stage,
            study=self.study,
            as_of=self.as_of,
        )

    def stage_summaries(self, policy: Policy | None = None) -> list[StageSummary]:
        """Per stage: cases, runs by status, best case, recorded vs ranked survivors.
        With no ``policy``, the study's objectives (none: no scores)."""
        if policy is None and self.objectives:
            policy = self.policy()
        return stage_summaries(
            self.dag,
            self.runs,
            self.selections,
            self.finals_by_metric,
            policy,
            study=self.study,
            as_of=self.as_of,
        )

    # -- the DAG ----------------------------------------------------------------------

    def dag_dict(self) -> dict[str, Any]:
        """The ``dag --json`` shape: nodes by (stage, case), edges by (parent, child)."""
        nodes = []
        for n in self.dag.cases():
            d = n.to_dict()
            d["children"] = self.dag.children(n.case)
            nodes.append(d)
        return {
            "study": self.study,
            "as_of": self.as_of,
            "nodes": nodes,
            "edges": [e.to_dict() for e in self.dag.edges()],
        }


def load_study(
    ledger: Ledger,
    study: str,
    as_of: int | None = None,
    *,
    checkpoints: bool = True,
    on_frame: Callable[[Frame], None] | None = None,
) -> StudyView:
    """Build every built-in projection for ``study`` at ``as_of`` (default: the head).

    Reads only that study's events (``read_batches(study=...)``); ``on_frame`` sees
    each frame of them from seq 0 (``build_many``). Raises
    ``UnknownStudy``, ``AsOfError``, and ``ProjectionError`` when the study was created
    after ``as_of``.
    """
    if not ledger.has_study(study):
        raise UnknownStudy(study, ledger.studies())
    limit = resolve_as_of(ledger, as_of)
    dag, runs, metrics, selections = build_many(
        ledger,
        builtin_projections(),
        limit,
        study=study,
        checkpoints=checkpoints,
        on_frame=on_frame,
    )
    view = StudyView(study, limit, dag, runs, metrics, selections)  # type: ignore[arg-type]
    if view.dag.info is None:
        created = next(iter(ledger.read(study=study, types=["study_created"])), None)
        when = f"at seq {created.seq}" if created is not None else "later"
        raise ProjectionError(
            f"study {study!r} did not exist yet at seq {limit} (it was created {when}); "
            "pick a later --as-of"
        )
    return view
