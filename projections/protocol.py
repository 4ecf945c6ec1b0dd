"""What a projection is: the protocol, the shared base class and the snapshot encoder.

A projection is a pure fold over the event log. It never writes the log, reads no clock
and no randomness, ignores event types it does not know, and can be frozen to bytes
(``snapshot``) and thawed (``restore``), so that ``projections.base.build`` can start
from a checkpoint and replay only the tail — the result must equal a fold from scratch,
byte for byte of ``snapshot()`` (a hypothesis property holds this).

This module imports no other projection module (only ``projections.errors``), so the
built-in projections, the checkpoint store and the build machinery can all depend on it
without forming a cycle (``tests/test_import_graph.py`` holds that).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec

from ledger.events import Envelope
from ledger.frames import Frame

from .errors import ProjectionError

__all__ = ["BaseProjection", "Projection", "encode_state"]

# One encoder for every snapshot: sorted map keys, so equal states give equal bytes.
_state_encoder = msgspec.msgpack.Encoder(order="deterministic")


def encode_state(obj: Any) -> bytes:
    """Deterministic msgpack for ``snapshot()``: same state, same bytes."""
    return _state_encoder.encode(obj)


@runtime_checkable
class Projection(Protocol):
    """What ``build`` and the checkpoints need from a projection.

    ``seq`` is the log position the state reflects (0 for an empty state); ``name`` and
    ``version`` identify the snapshot format, so a checkpoint written by another version
    is never trusted.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    seq: int

    def apply(self, env: Envelope) -> None: ...

    def apply_batch(self, envs: list[Envelope]) -> None: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


class BaseProjection:
    """Shared plumbing: ``apply`` is a batch of one; subclasses fold batches.

    A subclass folds either frames (``FRAMES = True`` and ``_fold_frame(frame)``: the
    metrics events as numpy columns, the built-ins) or envelope lists (``_fold(envs)``),
    and implements the snapshot pair; the base keeps ``seq`` so a half-applied batch
    never advances the position.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    FRAMES: ClassVar[bool] = False

    def __init__(self) -> None:
        self.seq = 0

    def apply(self, env: Envelope) -> None:
        self.apply_batch([env])

    def apply_batch(self, envs: list[Envelope]) -> None:
        if not envs:
            return
        if self.FRAMES:
            self._fold_frame(Frame.from_envelopes(envs))
        else:
            self._fold(envs)
        self.seq = max(self.seq, envs[-1].seq)

    def apply_frame(self, frame: Frame) -> None:
        if self.FRAMES:
            self._fold_frame(frame)
        elif frame.envelopes is not None:
            self._fold(frame.envelopes)
        else:  # pragma: no cover - build_many hands such projections envelope frames
            raise ProjectionError(f"{type(self).__name__} folds envelopes, not column frames")
        self.seq = max(self.seq, frame.last)

    def _fold(self, envs: list[Envelope]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fold_frame(self, frame: Frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def snapshot(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def restore(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq={self.seq})"
