"""The errors of ``projections``: its branches of the one ``LedgerError`` tree.

Every error class of the package (analytics, exports, report, SQL included) is defined
here and derives from ``ledger.errors.LedgerError``, so the CLI's one handler prints
each as a one-line ``error: ...`` and exits 1. The modules that raise them import them
from here (and keep the names importable where they used to live)::

    LedgerError (ledger.errors)
    ├── ProjectionError       a projection cannot be built or queried as asked
    │   ├── AsOfError         --as-of past the head, or a projection asked to go back in time
    │   ├── UnknownStudy      a study the ledger does not hold (lists the known ones)
    │   ├── PolicyError       a ranking policy that cannot be used (rankings)
    │   └── ReportError       the HTML report cannot be written where asked (report)
    ├── RulesError            a rules file for ``ledger check`` that cannot be read
    ├── ExportError           an export cannot be written as asked (export)
    │   ├── UnsafePathError   a name or path that would land outside the output folder
    │   └── SelectionError    a ``--where`` or ``--fields`` expression that cannot be used
    ├── AnalyticsError        input the analytics cannot use (``argument`` names it)
    │   └── QueryError        a query naming what does not exist (lists what does)
    ├── ConfigError           a ``ledger.toml`` [analytics] table that cannot be used
    └── SqlError              DuckDB refused or failed the query (``ledger sql``)
        ├── SqlRefused        a statement that would write, attach, load or touch a file
        └── SqlUnavailable    DuckDB is not installed (names the extra)

Warnings are not errors and stay with their modules: ``CheckpointWarning``
(``projections.checkpoints``), ``ExportJournalWarning`` (``projections.export.api``).

This module imports nothing from ``projections``, so any module of the package can
import it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import LedgerError

__all__ = [
    "AnalyticsError",
    "AsOfError",
    "ConfigError",
    "ExportError",
    "PolicyError",
    "ProjectionError",
    "QueryError",
    "ReportError",
    "RulesError",
    "SelectionError",
    "SqlError",
    "SqlRefused",
    "SqlUnavailable",
    "UnknownStudy",
    "UnsafePathError",
]


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


class PolicyError(ProjectionError):
    """A ranking policy that cannot be used (bad syntax, unknown direction...)."""


class ReportError(ProjectionError):
    """The report cannot be written where asked."""


class RulesError(LedgerError):
    """A rules file that cannot be read; names the file and the rule."""


class ExportError(LedgerError):
    """An export cannot be written as asked; nothing was written under the final name."""


class UnsafePathError(ExportError):
    """A name or path would land outside the output folder, or on a planted symlink."""


class SelectionError(ExportError):
    """A ``--where`` or ``--fields`` expression that cannot be used."""


class AnalyticsError(LedgerError):
    """Input the analytics cannot use: a wrong shape, type or parameter.

    The message names the argument and says how to fix it; ``argument`` holds the
    argument's name for programs.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        self.argument = argument
        super().__init__(message)


class QueryError(AnalyticsError):
    """A query that cannot be answered as asked: an unknown study, stage, case, ECO,
    param or metric, a bad operator or aggregate. The message lists what exists."""


class ConfigError(LedgerError):
    """A ``ledger.toml`` that cannot be used; the message names the file and field."""


class SqlError(LedgerError):
    """DuckDB refused or failed the query; the message is DuckDB's, on one line."""


class SqlRefused(SqlError):
    """A statement that would write, attach a database, load an extension or touch a
    file; nothing ran."""


class SqlUnavailable(SqlError):
    """DuckDB is not installed; the message says which extra to install."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(
            f"ledger sql needs DuckDB ({exc}); install it with: pip install 'results-ledger[sql]'"
        )
