"""The handles a runner holds: a declared case, and an open run.

``RunHandle`` turns a runner's calls into events, checked and stamped at the call
(``ledger.inputs``), and hands them to its ``Recorder``. As a context manager it
finishes the run by how the block ended: ``completed``, ``pruned`` (``RunPruned``, or
Optuna's ``TrialPruned``), ``cancelled`` (``KeyboardInterrupt``) or ``failed``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .errors import EventError, LedgerError
from .events import I64_MAX, ArtifactRecorded, RunFinished, strict_class
from .inputs import Stamp, checked, integer, metric_values, stamp
from .plan import attempt_key

__all__ = ["CaseHandle", "RunHandle", "RunPruned", "run_id_for"]

_StrictMetrics = strict_class("metrics_recorded")
_BIG_VALUES = 1 << 18  # characters of metric names past which a call checks the event's size


class RunPruned(Exception):
    """Raise inside ``with case.run() as run:`` to stop the run and finish it as
    ``pruned`` (the block swallows it, like a ``return``). ``optuna.TrialPruned`` is
    recognised too, and propagates, so that Optuna sees it."""


RunPruned.__module__ = "ledger"  # its public name: ``ledger.RunPruned`` in run errors


def run_id_for(case: str, attempt: int, seed: int | None = None) -> str:
    """The run id the Recorder gives ``attempt`` of ``case`` (with ``seed``)."""
    return f"{attempt_key(case, seed)}#{attempt}"


def _means_pruned(exc: BaseException) -> bool:
    """Ours, or Optuna's ``TrialPruned`` (recognised by name: optuna is not imported)."""
    if isinstance(exc, RunPruned):
        return True
    return any(
        c.__name__ == "TrialPruned" and c.__module__.split(".")[0] == "optuna"
        for c in type(exc).__mro__
    )


def _exception_text(exc: BaseException) -> str:
    import traceback  # only a failing run needs it (start-up cost otherwise)

    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]


class CaseHandle:
    """A declared case; ``run()`` starts a run of it."""

    def __init__(self, recorder: Any, case: str, stage: int, params: dict[str, Any]) -> None:
        self.recorder = recorder
        self.id = case
        self.stage = stage
        self.params = params

    def run(
        self,
        *,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        ts: Stamp = None,
    ) -> RunHandle:
        """Start a run of this case (``ts``: when it started; default now)."""
        return self.recorder.start_run(
            self, seed=seed, config=config, provenance=provenance, run_id=run_id, ts=ts
        )

    def __repr__(self) -> str:
        return f"CaseHandle({self.id!r}, stage={self.stage})"


class RunHandle:
    """An open run. As a context manager it finishes ``completed`` on a clean exit,
    ``pruned`` when the body raises ``RunPruned`` or ``optuna.TrialPruned``, ``cancelled``
    on ``KeyboardInterrupt``, and ``failed`` (with the exception text) otherwise."""

    def __init__(self, recorder: Any, case: CaseHandle, run: str, seed: int | None) -> None:
        self.recorder = recorder
        self.case = case
        self.id = run
        self.seed = seed
        self.auto_id = True  # the Recorder chose the id, so it may move to a free attempt
        self.finished = False
        self.refused: EventError | None = None  # the ledger refused the run at a commit
        self.finals: dict[str, float] = {}
        self._finals_ts: str | float | None = None
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def _open(self) -> None:
        if self.refused is not None:
            raise LedgerError(
                f"run {self.id!r} was refused at a commit and its events dropped "
                f"({self.refused.detail}); start a new run"
            )
        if self.finished:
            raise LedgerError(f"run {self.id!r} is finished; start a new run to record more")

    def log(
        self, values: Mapping[str, float], step: int | None = None, *, ts: Stamp = None
    ) -> None:
        """Record metric values; without ``step`` they are final results, committed
        together with the run's finish (stamped with the time of the last call that
        gave one). ``ts``: when the values were measured; default now.

        Raises ``LedgerDecodeError`` naming the field for a value that is not a number
        (numpy scalars are numbers; arrays are not), an int beyond 64 bits, a step that
        is not an int in 0..2**63-1, a bad ``ts``."""
        self._open()
        when = stamp(ts)
        values = metric_values(values)
        if step is None:
            self.finals.update(values)
            self._finals_ts = when
            return
        if type(step) is not int or not 0 <= step <= I64_MAX:
            step = integer(step, "step")
        event = _StrictMetrics(
            study=self.recorder.study, run=self.id, values=values, step=step, ts=when
        )
        if sum(map(len, values)) > _BIG_VALUES:
            event = checked(event)  # the size limit, for a call with very many names
        # Values, step and names are checked: the strict class skips re-validation.
        self.recorder._emit(event)

    def artifact(self, name: str, uri: str, *, ts: Stamp = None, **extra: Any) -> None:
        """Record a file the run produced, by reference (``sha256``, ``bytes``,
        ``media_type`` in ``extra``)."""
        self._open()
        event = ArtifactRecorded(
            study=self.recorder.study, run=self.id, name=name, uri=uri, ts=stamp(ts), **extra
        )
        self.recorder._emit(checked(event))

    def finish(
        self,
        status: str = "completed",
        *,
        error: str | None = None,
        resources: Mapping[str, Any] | None = None,
        ts: Stamp = None,
    ) -> None:
        """Finish the run (``ts``: when it ended; default now); a second call is a no-op."""
        if self.finished or self.refused is not None:
            return
        res: dict[str, Any] = {
            "wall_s": round(time.perf_counter() - self._t0, 6),
            "cpu_s": round(time.process_time() - self._cpu0, 6),
        }
        if resources:
            res.update(resources)
        finished = checked(
            RunFinished(
                study=self.recorder.study,
                run=self.id,
                status=status,  # type: ignore[arg-type]  # checked() refuses another
                error=error,
                resources=res,
                ts=stamp(ts),
            )
        )
        self.finished = True
        events: list[Any] = []
        if self.finals:
            events.append(
                _StrictMetrics(
                    study=self.recorder.study,
                    run=self.id,
                    values=dict(self.finals),
                    ts=self._finals_ts,
                )
            )
        events.append(finished)
        self.recorder._finish_run(self, events)

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.finished or self.refused is not None:
            return False
        if exc is None:
            self.finish("completed")
        elif _means_pruned(exc):
            self.finish("pruned", error=_exception_text(exc))
            return isinstance(exc, RunPruned)  # ours stops the run; Optuna's goes on up
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("cancelled", error="KeyboardInterrupt")
        else:
            self.finish("failed", error=_exception_text(exc))
        return False

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"
