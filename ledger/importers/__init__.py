"""Importers: foreign sources (CSV, OpenROAD METRICS2.1, MLflow, Optuna) as ledger events.

Each importer parses a whole source into a list of DESIGN §2 wire dicts with stable ids
(so re-importing appends nothing) and a summary, or raises ``ImportSourceError`` naming
``file:line``. The caller appends the list as one atomic batch. MLflow and Optuna are
imported lazily, only when their importer runs.
"""

from __future__ import annotations
