"""results-ledger: an append-only, hash-chained event log for experiment results.

``import ledger`` stays light: it loads the error tree only, and the public classes
(``Ledger``, ``Recorder``, ...) import their modules on first use, so msgspec and lmdb
are paid for by the code that uses them. scipy, pyarrow and click are never imported
from here.
"""

from __future__ import annotations

from .errors import (
    AnchorError as AnchorError,
)
from .errors import (
    AuthenticationFailed as AuthenticationFailed,
)
from .errors import (
    CorruptionError as CorruptionError,
)
from .errors import (
    EventError as EventError,
)
from .errors import (
    EventTooLarge as EventTooLarge,
)
from .errors import (
    ForkSafetyError as ForkSafetyError,
)
from .errors import (
    HeadMoved as HeadMoved,
)
from .errors import (
    IdempotencyConflict as IdempotencyConflict,
)
from .errors import (
    ImportSourceError as ImportSourceError,
)
from .errors import (
    LedgerDecodeError as LedgerDecodeError,
)
from .errors import (
    LedgerError as LedgerError,
)
from .errors import (
    LedgerFull as LedgerFull,
)
from .errors import (
    LedgerNotFound as LedgerNotFound,
)
from .errors import (
    LedgerWriteFailed as LedgerWriteFailed,
)
from .errors import (
    MissingDependency as MissingDependency,
)
from .errors import (
    RuleViolation as RuleViolation,
)
from .errors import (
    RunClosed as RunClosed,
)
from .errors import (
    StorageError as StorageError,
)
from .errors import (
    StoreUnavailable as StoreUnavailable,
)
from .errors import (
    UnsafeLocation as UnsafeLocation,
)

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs ~4 ms
if TYPE_CHECKING:  # what the names below resolve to, for type checkers and readers
    from .events import Envelope as Envelope
    from .log import AppendResult as AppendResult
    from .log import Head as Head
    from .log import Ledger as Ledger
    from .log import VerifyReport as VerifyReport
    from .merging import merge as merge
    from .plan import Plan as Plan
    from .recorder import CaseHandle as CaseHandle
    from .recorder import Recorder as Recorder
    from .recorder import RunHandle as RunHandle
    from .recorder import RunPruned as RunPruned
    from .replication import sync as sync

# name -> the submodule that defines it, imported on first access (PEP 562): a process
# that only needs the errors, or a CLI printing --help, does not pay for msgspec, lmdb,
# hashlib and the event schema.
_LAZY = {
    "Envelope": "events",
    "AppendResult": "log",
    "Head": "log",
    "Ledger": "log",
    "VerifyReport": "log",
    "merge": "merging",
    "Plan": "plan",
    "CaseHandle": "recorder",
    "Recorder": "recorder",
    "RunHandle": "recorder",
    "RunPruned": "recorder",
    "sync": "replication",
}


def __getattr__(name: str) -> object:
    from importlib import import_module

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(f".{module}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if not name.startswith("__"):
        # ``ledger.log`` after a plain ``import ledger``, as when it imported eagerly.
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "AnchorError",
    "AppendResult",
    "AuthenticationFailed",
    "CaseHandle",
    "CorruptionError",
    "Envelope",
    "EventError",
    "EventTooLarge",
    "ForkSafetyError",
    "HeadMoved",
    "IdempotencyConflict",
    "ImportSourceError",
    "Ledger",
    "LedgerDecodeError",
    "LedgerError",
    "LedgerFull",
    "LedgerNotFound",
    "LedgerWriteFailed",
    "MissingDependency",
    "Plan",
    "Recorder",
    "RuleViolation",
    "RunClosed",
    "RunHandle",
    "RunPruned",
    "StorageError",
    "StoreUnavailable",
    "UnsafeLocation",
    "VerifyReport",
    "__version__",
    "merge",
    "sync",
]
