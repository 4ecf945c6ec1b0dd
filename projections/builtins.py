"""The built-in projections, and checkpointing them all at once.

``builtin_projections()`` is the list ``load_study`` builds and ``ledger checkpoint``
saves; ``write_checkpoints`` builds projections (by default these) at a seq in one pass
and stores a checkpoint of each. They live here, above both the projections and the
checkpoint store, so that neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger import Ledger
from ledger.errors import StorageError

from .base import build_many, resolve_as_of
from .checkpoints import CheckpointHeader, prune_checkpoints, write_checkpoint
from .dag import DagProjection
from .errors import ProjectionError
from .metrics import MetricsProjection
from .protocol import Projection
from .runs import RunsProjection
from .stages import SelectionsProjection

__all__ = ["builtin_projections", "write_checkpoints"]


def builtin_projections() -> list[Projection]:
    """Fresh instances of every built-in projection (what ``ledger checkpoint`` saves)."""
    return [DagProjection(), RunsProjection(), MetricsProjection(), SelectionsProjection()]


def write_checkpoints(
    ledger: Ledger,
    projections: Sequence[Projection] | None = None,
    *,
    as_of: int | None = None,
    keep: int | None = None,
) -> list[CheckpointHeader]:
    """Build ``projections`` (default: every built-in) at ``as_of`` (default: the head)
    in one pass, starting from their own checkpoints, and store a checkpoint of each.

    ``keep`` then prunes each projection's checkpoints to the newest ``keep``. Raises
    ``ProjectionError`` on an empty log, ``AsOfError``, ``StorageError`` (read-only).
    """
    if getattr(ledger, "readonly", False):
        raise StorageError(f"{ledger.path} is open read-only; checkpoints are not written")
    limit = resolve_as_of(ledger, as_of)
    if limit == 0:
        raise ProjectionError(f"{ledger.path} holds no events yet: there is nothing to checkpoint")
    if projections is None:
        projections = builtin_projections()
    built = build_many(ledger, list(projections), limit)
    headers = [write_checkpoint(ledger, proj) for proj in built]
    if keep is not None:
        prune_checkpoints(ledger, keep, [p.name for p in built])
    return headers
