"""The projection machinery: what a projection is, and how one is built at a seq.

A projection is a pure fold over the event log. It never writes the log, reads no clock
and no randomness, ignores event types it does not know, and can be frozen to bytes
(``snapshot``) and thawed (``restore``), so that ``build`` can start from a checkpoint
and replay only the tail — the result must equal a fold from scratch, byte for byte of
``snapshot()`` (a hypothesis property holds this).

``build(ledger, projection, as_of=None)`` restores the newest valid checkpoint at or
before ``as_of`` and replays the rest with ``ledger.read_batches``; ``build_many`` does
the same for several projections in one pass over the log.

Errors (all ``LedgerError``)::

    ProjectionError
    ├── AsOfError          --as-of past the head, or a projection asked to go back in time
    └── UnknownStudy       a study the ledger does not hold (lists the known ones)
"""

from __future__ import annotations

import gc
import operator
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import msgspec
import numpy as np

from ledger import Envelope, Ledger
from ledger.errors import LedgerError
from ledger.events import MetricsRecorded

__all__ = [
    "AsOfError",
    "BaseProjection",
    "Partition",
    "Projection",
    "ProjectionError",
    "UnknownStudy",
    "build",
    "build_many",
    "encode_state",
    "partition",
    "resolve_as_of",
]

P = TypeVar("P", bound="Projection")

# One encoder for every snapshot: sorted map keys, so equal states give equal bytes.
_state_encoder = msgspec.msgpack.Encoder(order="deterministic")


def encode_state(obj: Any) -> bytes:
    """Deterministic msgpack for ``snapshot()``: same state, same bytes."""
    return _state_encoder.encode(obj)


class ProjectionError(LedgerError):
    """A projection cannot be built as asked."""


class AsOfError(ProjectionError):
    pass


class UnknownStudy(ProjectionError):
    def __init__(self, study: str, known: Sequence[str]) -> None:
        self.study = study
        self.known = list(known)
        hint = (
            f"known studies: {', '.join(self.known)}"
            if self.known
            else "the ledger holds no study yet (append a study_created event first)"
        )
        super().__init__(f"unknown study {study!r}; {hint}")


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

    Subclasses implement ``_fold(batch)`` (the state change) and the snapshot pair; the
    base keeps ``seq`` so a half-applied batch never advances the position.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def __init__(self) -> None:
        self.seq = 0

    def apply(self, env: Envelope) -> None:
        self.apply_batch([env])

    def apply_batch(self, envs: list[Envelope]) -> None:
        if not envs:
            return
        self._fold(envs)
        self.seq = max(self.seq, envs[-1].seq)

    def _fold(self, envs: list[Envelope]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def snapshot(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def restore(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq={self.seq})"


class Partition:
    """A batch split once: metrics events (the bulk) apart from everything else, each in
    seq order, with the per-event columns of the metrics events (study, run, step,
    values) gathered in the same pass and shared by every projection that folds the
    batch. One pass over the batch, not one per column: on a large batch each pass is
    a walk over cold memory, and it cost about as much as the work done per event."""

    __slots__ = (
        "_seqs",
        "_single",
        "_span",
        "events",
        "metrics",
        "other",
        "runs",
        "steps",
        "studies",
        "values",
    )

    def __init__(
        self,
        metrics: list[Envelope],
        other: list[Envelope],
        events: list[Any],
        studies: list[str],
        runs: list[str],
        steps: list[int | None],
        values: list[dict[str, Any]],
        span: tuple[int, int, int] | None = None,
    ) -> None:
        self.metrics = metrics
        self.other = other
        self.events = events
        self.studies = studies
        self.runs = runs
        self.steps = steps
        self.values = values
        self._span = span  # (first seq, last seq, events) of the whole batch
        self._seqs: np.ndarray | None = None
        self._single: Any = _UNSET

    @property
    def seqs(self) -> np.ndarray:
        """The seq of each metrics event (int64). A batch read from the log holds every
        seq of its range, so the metrics events hold those of the range minus the few
        other events': no pass over the metrics envelopes."""
        if self._seqs is None:
            span = self._span
            if span is not None and span[1] - span[0] + 1 == span[2]:
                first, last, _ = span
                keep = np.ones(last - first + 1, bool)
                if self.other:
                    keep[
                        np.fromiter(map(_seq_of, self.other), np.int64, len(self.other)) - first
                    ] = False
                self._seqs = np.arange(first, last + 1, dtype=np.int64)[keep]
            else:
                self._seqs = np.fromiter(map(_seq_of, self.metrics), np.int64, len(self.metrics))
        return self._seqs

    @property
    def single_study(self) -> str | None:
        """The study of every metrics event, when they share one (the usual case)."""
        if self._single is _UNSET:
            studies = self.studies
            one = studies[0] if studies else None
            self._single = one if one is not None and studies.count(one) == len(studies) else None
        return self._single


_UNSET = object()
_seq_of = operator.attrgetter("seq")


class _Shared(threading.local):
    """The batch ``build_many`` is folding in this thread, and its partition."""

    batch: list[Envelope] | None = None
    split: Partition | None = None


_shared = _Shared()


def partition(batch: list[Envelope]) -> Partition:
    """Split ``batch`` into metrics and other events.

    ``build_many`` hands the same list to every projection, so while it folds a batch
    the split (a Python step per event) is memoised and paid once, not once per
    projection. Outside ``build_many`` nothing is cached.
    """
    if _shared.batch is batch and _shared.split is not None:
        return _shared.split
    metrics: list[Envelope] = []
    events: list[Any] = []
    other: list[Envelope] = []
    studies: list[str] = []
    runs: list[str] = []
    steps: list[int | None] = []
    values: list[dict[str, Any]] = []
    m_append, e_append, o_append = metrics.append, events.append, other.append
    s_append, r_append, t_append, v_append = (
        studies.append,
        runs.append,
        steps.append,
        values.append,
    )
    for env in batch:
        ev = env.event
        if type(ev) is MetricsRecorded:
            m_append(env)
            e_append(ev)
            s_append(ev.study)
            r_append(ev.run)
            t_append(ev.step)
            v_append(ev.values)
        else:
            o_append(env)
    span = (batch[0].seq, batch[-1].seq, len(batch)) if batch else None
    result = Partition(metrics, other, events, studies, runs, steps, values, span)
    if _shared.batch is batch:
        _shared.split = result
    return result


def _share(batch: list[Envelope] | None) -> None:
    _shared.batch = batch
    _shared.split = None


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """A fold allocates millions of short-lived dicts that refcounting frees; the cyclic
    collector would rescan them for nothing (it doubled the fold time in measurements)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def resolve_as_of(ledger: Ledger, as_of: int | None) -> int:
    """The seq to build at: the head when ``as_of`` is None.

    Raises ``AsOfError`` when ``as_of`` is negative or past the head.
    """
    head = ledger.head.seq
    if as_of is None:
        return head
    if as_of < 0 or as_of > head:
        raise AsOfError(
            f"as-of seq {as_of} is outside the log (its head is seq {head}); "
            f"pick a seq from 0 to {head}"
        )
    return as_of


def build(
    ledger: Ledger,
    projection: P,
    as_of: int | None = None,
    *,
    study: str | None = None,
    checkpoints: bool = True,
) -> P:
    """Bring ``projection`` to the state after event ``as_of`` (default: the head).

    A fresh projection starts from the newest valid checkpoint at or before ``as_of``;
    one already built continues from its own ``seq``. ``study`` reads only that study's
    events (the state of other studies is then incomplete). Raises ``AsOfError``.
    """
    return build_many(ledger, [projection], as_of, study=study, checkpoints=checkpoints)[0]


BATCH_EVENTS = 8192
"""Events folded per batch. Big enough that numpy's per-call cost vanishes, small enough
that a batch's envelopes stay in the CPU caches between the passes of the folds: at 1M
values, 8k-event batches fold about 20% faster than 64k-event ones and hold a quarter
of the memory (measured with ``benchmarks/bench_scaling.py`` and a chunk-size sweep)."""


def _batches(ledger: Ledger, since: int, limit: int, study: str | None) -> Iterator[list[Envelope]]:
    """The log read block by block, regrouped into batches of about ``BATCH_EVENTS``
    events whatever the size of the stored blocks (a committed batch of the Recorder's
    holds 1,000 events, a bulk append's 4,096 per block)."""
    pending: list[Envelope] = []
    for chunk in ledger.read_batches(since, limit, study=study, chunk_blocks=1):
        if not pending and len(chunk) >= BATCH_EVENTS:
            yield chunk
            continue
        pending.extend(chunk)
        if len(pending) >= BATCH_EVENTS:
            yield pending
            pending = []
    if pending:
        yield pending


def build_many(
    ledger: Ledger,
    projections: Sequence[P],
    as_of: int | None = None,
    *,
    study: str | None = None,
    checkpoints: bool = True,
) -> list[P]:
    """``build`` for several projections with one read of the log.

    Each projection starts at its own position (its checkpoint, or its current ``seq``);
    the read starts at the earliest and each projection sees only events after its own
    position. Raises ``AsOfError`` (``as_of`` outside the log, or a projection already
    past it).
    """
    from .checkpoints import restore_newest

    limit = resolve_as_of(ledger, as_of)
    starts: list[int] = []
    hashes: dict[int, str] = {}
    for proj in projections:
        if proj.seq > limit:
            raise AsOfError(
                f"projection {proj.name!r} is already at seq {proj.seq}, past the requested "
                f"seq {limit}; build a fresh projection to go back in time"
            )
        start = proj.seq
        if checkpoints:
            start = max(
                start, restore_newest(ledger, proj, limit, newer_than=proj.seq, hashes=hashes)
            )
        starts.append(start)
    if not projections:
        return []
    since = min(starts)
    try:
        with _quiet_gc():
            for batch in _batches(ledger, since, limit, study):
                last = batch[-1].seq
                _share(batch)
                for proj, start in zip(projections, starts):
                    if last <= start:
                        continue
                    if batch[0].seq <= start:
                        proj.apply_batch([e for e in batch if e.seq > start])
                    else:
                        proj.apply_batch(batch)
                _share(None)
    finally:
        _share(None)
    for proj in projections:
        proj.seq = limit
    return list(projections)
