"""The errors of ``projections``: the ``projections`` branch of the one ``LedgerError`` tree.

Every class here derives from ``ledger.errors.LedgerError``, so the CLI's one handler
prints each as a one-line ``error: ...`` and exits 1::

    LedgerError (ledger.errors)
    └── ProjectionError       a projection cannot be built or queried as asked
        ├── AsOfError         --as-of past the head, or a projection asked to go back in time
        └── UnknownStudy      a study the ledger does not hold (lists the known ones)

This module imports nothing from ``projections``, so any module of the package can
import it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import LedgerError

__all__ = ["AsOfError", "ProjectionError", "UnknownStudy"]


class ProjectionError(LedgerError):
    """A projection cannot be built as asked."""


class AsOfError(ProjectionError):
    """``--as-of`` outside the log, or a projection already past the seq asked for."""


class UnknownStudy(ProjectionError):
    """A study the ledger does not hold; the message lists the ones it does."""

    def __init__(self, study: str, known: Sequence[str]) -> None:
        self.study = study
        self.known = list(known)
        hint = (
            f"known studies: {', '.join(self.known)}"
            if self.known
            else "the ledger holds no study yet (append a study_created event first)"
        )
        super().__init__(f"unknown study {study!r}; {hint}")
