"""What the framework integrations share: a Recorder opened on first use, one case and
one run at a time, framework values turned into plain numbers, and a finish that
always happens.

A :class:`Session` records one framework object's training (a Lightning logger, a
Trainer callback, a Keras callback). It opens its :class:`~ledger.recorder.Recorder`
only when there is something to record — and only in the process that records (rank
zero), so the other ranks never touch the ledger — enters it (a background commit every
second, SIGTERM/SIGINT handled when it runs in the main thread) and asks it to
``resume()``, which closes as ``interrupted`` the runs of killed runners (their process
is gone) before a new attempt starts. Everything the Recorder guarantees holds: events
are buffered and committed in batches, ids derive from content, a run's final values
ride with its finish.

When the process exits with a run still open (an exception the framework never reported
to its callbacks), the run is finished at exit: ``failed`` with the exception's text when
one ended the interpreter, ``cancelled`` otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import numbers
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from ledger.recorder import Recorder, RunHandle

__all__ = ["Session", "default_case", "metric_values", "plain"]

_MAX_DEPTH = 16
_PLAIN = frozenset((bool, int, float, str))


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able data for params and config: scalars of numpy, torch or
    JAX as Python numbers, mappings and sequences recursively, anything else as text
    (a module, a path, an enum member). Never raises."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, str):  # a subclass (torch's version string, a str enum)
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if depth >= _MAX_DEPTH:
        return str(value)
    if callable(getattr(value, "item", None)):
        item = _item(value)
        if isinstance(item, (bool, int, float)):
            return item
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [plain(v, depth + 1) for v in items]
    if hasattr(value, "__dataclass_fields__") or type(value).__name__ == "Namespace":
        with contextlib.suppress(TypeError):
            return {str(k): plain(v, depth + 1) for k, v in vars(value).items()}
    return str(value)


def _scalar(value: Any) -> int | float | None:
    """A number, or a one-element numpy, torch or JAX value, as an int or float; None
    otherwise (booleans included: they are not metrics)."""
    if isinstance(value, bool):
        return None
    if not callable(getattr(value, "item", None)):
        if isinstance(value, numbers.Integral):
            return int(value)
        return float(value) if isinstance(value, numbers.Real) else None
    out = _item(value)
    return None if isinstance(out, bool) or not isinstance(out, (int, float)) else out


def _item(value: Any) -> Any:
    """``value.item()`` of a one-element array or tensor; None when it has more."""
    numel = getattr(value, "numel", None)
    count = numel() if callable(numel) else getattr(value, "size", 1)
    if count != 1:
        return None
    try:
        return value.item()
    except (TypeError, ValueError, RuntimeError):
        return None


def metric_values(logs: Mapping[str, Any] | None) -> dict[str, int | float]:
    """The numbers among ``logs`` (framework scalars included); text, booleans, arrays
    and None are left out (they are not metrics)."""
    out: dict[str, int | float] = {}
    if not logs:
        return out
    for name, value in logs.items():
        kind = type(value)
        if kind is float or kind is int:
            out[str(name)] = value
            continue
        scalar = _scalar(value)
        if scalar is not None:
            out[str(name)] = scalar
    return out


def default_case(params: Mapping[str, Any]) -> str:
    """A case id for a run whose caller named none: ``hp-`` and 12 hex digits of the
    params' canonical bytes, so the same hyperparameters always land in the same case
    (a restarted runner resumes it) and different ones never collide."""
    from ledger.codec import encode_canonical

    digest = hashlib.blake2b(encode_canonical(dict(params)), digest_size=6).hexdigest()
    return f"hp-{digest}"


_OPEN: set[Session] = set()  # sessions with an open Recorder, closed at exit
_OPEN_LOCK = threading.Lock()
_HOOKED = False


def _at_exit() -> None:
    exc = getattr(sys, "last_value", None)
    for session in list(_OPEN):
        with contextlib.suppress(Exception):
            if exc is not None:
                session.close("failed", error=_error_text(exc))
            else:
                session.close("cancelled", error="the process exited before training ended")


def _error_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]


class Session:
    """One integration object's recording into one study (see the module doc).

    ``recorder_options`` go to :class:`~ledger.recorder.Recorder` (``batch_size``,
    ``interval``, ``durable``, ``redact``, ``handle_signals``, ...).
    """

    def __init__(
        self,
        location: Any,
        study: str,
        case: str | None = None,
        *,
        framework: str,
        recorder_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(study, str) or not study:
            raise ValueError("study must be a non-empty string (the ledger study to record into)")
        self.location = location
        self.study = study
        self.case = case
        self.framework = framework
        self.recorder_options = dict(recorder_options or {})
        self.recorder: Recorder | None = None
        self.run: RunHandle | None = None
        self._stack: contextlib.ExitStack | None = None
        self._lock = threading.RLock()
        self._step: int | None = None
        self._at_step: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> Recorder:
        """The Recorder, opened (and entered, and resumed) on first use."""
        with self._lock:
            if self.recorder is None:
                stack = contextlib.ExitStack()
                rec = stack.enter_context(
                    Recorder(self.location, self.study, **self.recorder_options)
                )
                try:
                    rec.resume()  # close the runs of killed runners before a new attempt
                except BaseException:
                    stack.close()
                    raise
                self.recorder, self._stack = rec, stack
                _track(self)
            return self.recorder

    def start(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> RunHandle:
        """Declare the case (its params fixed from now on) and start a run of it; the
        open run when there is one."""
        with self._lock:
            if self.run is not None and not self.run.finished:
                return self.run
            rec = self.open()
            clean = plain(dict(params or {}))
            if self.case is None:
                self.case = default_case(clean)
            handle = rec.case(self.case, params=clean)
            prov = {"framework": self.framework, **(provenance or {})}
            self.run = handle.run(
                seed=seed,
                config=plain(dict(config)) if config is not None else None,
                provenance=plain(prov),
            )
            self._step, self._at_step = None, {}
            return self.run

    def log(self, values: Mapping[str, Any] | None, step: int | None) -> None:
        """Record the numbers among ``values`` at ``step`` (None: final values). A value
        already recorded at the same step with the same number is not sent again (the
        Trainer reports evaluation metrics to both on_log and on_evaluate)."""
        numbers_ = metric_values(values)
        if not numbers_:
            return
        with self._lock:
            run = self.run if self.run is not None and not self.run.finished else self.start()
            if step is not None:
                step = int(step)
                if step != self._step:
                    self._step, self._at_step = step, {}
                seen = self._at_step
                fresh = {
                    k: v for k, v in numbers_.items() if k not in seen or not _same(seen[k], v)
                }
                if not fresh:
                    return
                seen.update(fresh)
                numbers_ = fresh
            run.log(numbers_, step=step)

    def artifact(self, name: str, uri: str, **extra: Any) -> None:
        with self._lock:
            run = self.run if self.run is not None and not self.run.finished else self.start()
            run.artifact(name, uri, **extra)

    def finish(self, status: str = "completed", *, error: str | None = None) -> None:
        """Finish the open run (no-op without one) and commit."""
        with self._lock:
            if self.run is not None and not self.run.finished:
                self.run.finish(status, error=error)

    def close(self, status: str = "cancelled", *, error: str | None = None) -> None:
        """Finish an open run with ``status``, commit everything and close the Recorder
        (its flush thread stops, signal handlers are restored). The next record opens
        it again."""
        with self._lock:
            try:
                self.finish(status, error=error)
            finally:
                stack, self._stack, self.recorder = self._stack, None, None
                _untrack(self)
                if stack is not None:
                    stack.close()

    def flush(self) -> None:
        with self._lock:
            if self.recorder is not None:
                self.recorder.flush()


def _same(a: Any, b: Any) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _track(session: Session) -> None:
    global _HOOKED
    with _OPEN_LOCK:
        _OPEN.add(session)
        if not _HOOKED:
            atexit.register(_at_exit)
            _HOOKED = True


def _untrack(session: Session) -> None:
    with _OPEN_LOCK:
        _OPEN.discard(session)


def env_seed(name: str) -> int | None:
    """An integer seed from the environment variable ``name`` (Lightning's
    ``PL_GLOBAL_SEED``), or None."""
    text = os.environ.get(name)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
