"""Importers: foreign sources (CSV, OpenROAD METRICS2.1, MLflow, Optuna) as ledger events.

Each importer parses a whole source into a list of wire dicts (docs/architecture.md, Events) with stable ids
(so re-importing appends nothing) and a summary, or raises ``ImportSourceError`` naming
``file:line``. The caller appends the list as one atomic batch. MLflow and Optuna are
imported lazily, only when their importer runs.
"""

from __future__ import annotations

from .common import ImportError_, ImportResult, ImportSourceError, MissingDependency
from .csv_import import read_csv_long, read_csv_wide
from .mlflow_import import read_mlflow
from .optuna_import import read_optuna
from .orfs import read_orfs

__all__ = [
    "ImportError_",
    "ImportResult",
    "ImportSourceError",
    "MissingDependency",
    "read_csv_long",
    "read_csv_wide",
    "read_mlflow",
    "read_optuna",
    "read_orfs",
]
