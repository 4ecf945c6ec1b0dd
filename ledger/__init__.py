"""results-ledger: an append-only, hash-chained event log for experiment results.

``import ledger`` stays light (msgspec and lmdb only): scipy, pyarrow and click are
never imported from here.
"""

from __future__ import annotations

from .errors import (
    CorruptionError as CorruptionError,
)
from .errors import (
    EventError as EventError,
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
    RuleViolation as RuleViolation,
)
from .errors import (
    RunClosed as RunClosed,
)
from .errors import (
    StorageError as StorageError,
)
from .events import Envelope as Envelope
from .log import AppendResult as AppendResult
from .log import Head as Head
from .log import Ledger as Ledger
from .log import VerifyReport as VerifyReport
from .plan import Plan as Plan
from .recorder import CaseHandle as CaseHandle
from .recorder import Recorder as Recorder
from .recorder import RunHandle as RunHandle

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "CaseHandle",
    "CorruptionError",
    "Envelope",
    "EventError",
    "ForkSafetyError",
    "HeadMoved",
    "IdempotencyConflict",
    "Ledger",
    "LedgerDecodeError",
    "LedgerError",
    "LedgerFull",
    "LedgerNotFound",
    "LedgerWriteFailed",
    "Plan",
    "Recorder",
    "RuleViolation",
    "RunClosed",
    "RunHandle",
    "StorageError",
    "VerifyReport",
    "__version__",
]
