"""The one exception tree of the ledger.

Library code raises these; only ``cli`` turns them into ``error:`` lines and exit codes,
so every message here is written to be read by a user: what, where, how to fix. Every
error class of the ``ledger`` package is defined here (one left: ``BackupError`` still
lives in ``ledger.backup``); those of ``projections`` are in ``projections.errors``,
under the same root::

    LedgerError
    ├── LedgerNotFound            a path that holds no ledger (a typo must not start one)
    ├── EventError                input refused; nothing of the batch was appended
    │   ├── LedgerDecodeError     bytes or JSON that are not a valid event
    │   ├── RuleViolation         an append-time rule broken (docs/architecture.md)
    │   │   ├── IdempotencyConflict   same id, other content
    │   │   └── RunClosed             a late event for a run that was already closed
    │   └── EventTooLarge         over the size or nesting limit
    ├── HeadMoved                 ``expected_head`` no longer matches (optimistic concurrency)
    ├── StorageError              the store failed; the ledger is intact
    │   ├── LedgerFull            map reached its ``max_size`` ceiling
    │   ├── LedgerWriteFailed     disk full or I/O error at commit
    │   ├── CorruptionError       stored bytes do not match the hash chain
    │   └── StoreUnavailable      a database server cannot be reached (down, restarting,
    │       │                     connection lost); nothing of the batch was written,
    │       │                     or — lost during COMMIT — its outcome is unknown and
    │       │                     re-sending it is safe (ids derive from content)
    │       └── AuthenticationFailed  the server refused the credentials
    ├── ForkSafetyError           a Ledger used in a forked child
    ├── UnsafeLocation            network file system without the opt-in
    ├── AnchorError               an anchor or manifest that cannot be read or used
    ├── BackupError               a backup or restore refused (ledger.backup)
    ├── ImportSourceError         a foreign source (CSV, ORFS, MLflow, Optuna) refused,
    │   │                         naming file:line and the column or field
    │   └── MissingDependency     an importer's peer library is not installed
    └── (projections.errors)      ProjectionError, RulesError, ExportError,
                                  AnalyticsError, ConfigError, SqlError and their subclasses
"""

from __future__ import annotations

__all__ = [
    "AnchorError",
    "CorruptionError",
    "EventError",
    "EventTooLarge",
    "ForkSafetyError",
    "HeadMoved",
    "IdempotencyConflict",
    "ImportSourceError",
    "LedgerDecodeError",
    "LedgerError",
    "LedgerFull",
    "LedgerNotFound",
    "LedgerWriteFailed",
    "MissingDependency",
    "RuleViolation",
    "RunClosed",
    "StorageError",
    "StoreUnavailable",
    "AuthenticationFailed",
    "UnsafeLocation",
]


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class LedgerNotFound(LedgerError):
    pass


class EventError(LedgerError):
    """An input event was refused.

    ``where`` is ``file:line`` (or ``batch[i]`` for API input), ``event_type`` the event's
    tag when known, ``field`` the offending field when known. The message is composed as
    ``where: type: detail`` so the CLI can print it as is.
    """

    def __init__(
        self,
        detail: str,
        *,
        where: str | None = None,
        event_type: str | None = None,
        field: str | None = None,
    ) -> None:
        self.detail = detail
        self.where = where
        self.event_type = event_type
        self.field = field
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = [p for p in (self.where, self.event_type) if p]
        parts.append(self.detail)
        return ": ".join(parts)

    def located(self, where: str) -> EventError:
        """Return a copy of this error that says where the event came from."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        EventError.__init__(
            err, self.detail, where=where, event_type=self.event_type, field=self.field
        )
        return err


class LedgerDecodeError(EventError):
    pass


class RuleViolation(EventError):
    pass


class IdempotencyConflict(RuleViolation):
    pass


class RunClosed(RuleViolation):
    """A late event for a finished run; ``run`` and ``closed_seq`` name the closing event,
    so a runner can record what follows under a new attempt."""

    run: str | None = None
    closed_seq: int | None = None


class EventTooLarge(EventError):
    pass


class HeadMoved(LedgerError):
    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the head moved: expected head seq {expected}, the ledger is at {actual}; "
            "re-read the state and decide again"
        )


class StorageError(LedgerError):
    pass


class LedgerFull(StorageError):
    pass


class LedgerWriteFailed(StorageError):
    pass


class CorruptionError(StorageError):
    def __init__(self, message: str, *, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(message)


class StoreUnavailable(StorageError):
    """The server holding a shared ledger cannot be reached. Transient: a caller that
    buffers (the Recorder) keeps its events and retries; re-sending is always safe."""


class AuthenticationFailed(StoreUnavailable):
    """The server refused the user or password (never shown in the message). Not worth
    retrying without a change of credentials, so the Recorder does not retry it."""


class ForkSafetyError(LedgerError):
    pass


class UnsafeLocation(LedgerError):
    pass


class AnchorError(LedgerError):
    """An anchor or manifest file that cannot be read or used."""


class ImportSourceError(LedgerError):
    """A foreign source that cannot be imported; nothing of it was returned.

    ``where`` is ``file:line`` (or a store location), ``field`` the column or key at fault
    and ``label`` how the source calls it (``column`` for tables, ``field`` for JSON).
    The message reads ``where: column 'x': detail`` so the CLI prints it as is.
    """

    def __init__(
        self,
        detail: str,
        *,
        where: str | None = None,
        field: str | None = None,
        label: str = "field",
    ) -> None:
        self.detail = detail
        self.where = where
        self.field = field
        parts = [p for p in (where, f"{label} {field!r}" if field else None) if p]
        parts.append(detail)
        super().__init__(": ".join(parts))


class MissingDependency(ImportSourceError):
    """The peer tool's client is not installed; says which extra to install."""

    def __init__(self, tool: str, extra: str, exc: BaseException | None = None):
        why = f" ({exc})" if exc else ""
        super().__init__(
            f"importing from {tool} needs its client library{why}; "
            f"install it with: pip install 'results-ledger[{extra}]'"
        )
