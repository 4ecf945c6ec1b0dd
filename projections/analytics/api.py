"""The analyses, each over a ``Query``, each returning an ``AnalyticsResult``.

This layer decides *which numbers* go into the statistics modules (``stats``,
``outliers``, ``compare``, ``failures``, ``curves``), which do the maths. It loads the
study once per call, takes the query's rows, leaves out what cannot be used — with a
reason per run — and shapes the ``--json`` output (README, Command reference).

Defaults, so a bare query does what a user means:

- the value analyses (``stats``, ``outliers``, ``compare``, ``rank_ci``,
  ``eco_effects``) use completed runs unless the query names statuses; ``failures`` and
  ``curves`` use every run (a failure analysis needs the failures; a diverging or live
  run has a curve worth seeing). Invalidated runs never count;
- the metric is the one argument, else the query's only metric, else the study's only
  objective; otherwise an error lists the metrics;
- a run without a final value of the metric, or whose value is NaN, is left out with
  that reason (outliers keep NaN in: the rule itself excludes it, with its reason);
- ``confidence``, ``min_n``, ``bootstrap``/``seed`` and the outlier rule come from an
  ``AnalyticsConfig`` (``config.load_config`` reads ``ledger.toml``); an explicit
  argument beats it.

Grouping (``by``): ``case``, ``stage``, ``eco``, ``eco_class``, ``host``, ``status``,
``param:NAME``, or ``all`` (one group). Groups are ordered by label (numbers
numerically, text in code-point order, a missing label last).

Every function raises ``QueryError`` / ``AnalyticsError`` (both ``LedgerError``) for a
request it cannot answer, and what ``Query.load`` raises (unknown study, bad as-of).

This module is the one place to import them from. Each analysis lives in a module of
its own (``stats_report``, ``outliers_report``, ``compare_report``, ``rank_report``,
``eco_effects_report``, ``failures_report``, ``curves_report``) and the steps they share
(defaults, the metric, usable values, group labels) in ``report_inputs``.
"""

from __future__ import annotations

from .compare_report import TESTS as TESTS
from .compare_report import compare as compare
from .curves_report import curves as curves
from .eco_effects_report import eco_effects as eco_effects
from .failures_report import FAILURE_STATUSES as FAILURE_STATUSES
from .failures_report import failures as failures
from .outliers_report import outliers as outliers
from .rank_report import rank_ci as rank_ci
from .report_inputs import BY as BY
from .stats_report import stats as stats

__all__ = [
    "BY",
    "FAILURE_STATUSES",
    "compare",
    "curves",
    "eco_effects",
    "failures",
    "outliers",
    "rank_ci",
    "stats",
]
