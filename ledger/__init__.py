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
    StorageError as StorageError,
)
from .events import Envelope as Envelope
from .log import AppendResult as AppendResult
from .log import Head as Head
from .log import Ledger as Ledger
from .log import VerifyReport as VerifyReport

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
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
    "RuleViolation",
    "StorageError",
    "VerifyReport",
    "__version__",
]
