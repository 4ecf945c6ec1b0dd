"""A Lightning logger that records into the ledger (``pip install 'results-ledger[lightning]'``).

.. code-block:: python

    from ledger.integrations.lightning import LedgerLogger

    trainer = lightning.Trainer(logger=LedgerLogger("results.ledger", study="mnist"))

- ``log_hyperparams(params)``: the case's params (declared when the run starts, at the
  first value; the module's ``save_hyperparameters`` are what Lightning passes);
- ``log_metrics(metrics, step)``: the values at ``step`` (Lightning's
  ``_batches_that_stepped``; its ``epoch`` key is recorded as a metric too);
- ``finalize(status)``: the run's finish — ``success`` -> completed, ``failed`` ->
  failed (``cancelled`` when a KeyboardInterrupt is what failed), ``aborted`` ->
  cancelled, ``finished`` (a SLURM requeue) -> interrupted;
- ``after_save_checkpoint``: each checkpoint file the trainer saved, as an artifact by
  reference (``file://`` URI and size; ``hash_checkpoints=True`` adds its SHA-256);
- rank zero only: other ranks record nothing and never open the ledger.

The case is ``case``, or ``hp-<digest of the params>``. Values logged after
``finalize`` (a ``trainer.test`` after ``fit``) start a new run of the same case.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from ._common import Session, env_seed, plain

__all__ = ["LedgerLogger", "STATUS"]

#: Lightning's ``finalize`` statuses as run statuses.
STATUS = {
    "success": "completed",
    "failed": "failed",
    "aborted": "cancelled",
    "finished": "interrupted",
}


class LedgerLogger(Logger):
    """Record a Lightning run into the study ``study`` of the ledger at ``location`` (a
    path, a ``postgresql://`` URL or an open :class:`~ledger.Ledger`).

    ``case`` names the case (default ``hp-<digest of the hyperparameters>``); ``seed``
    the run's seed (default: ``PL_GLOBAL_SEED``, set by ``seed_everything``);
    ``config`` goes into the run's config beside the trainer's settings;
    ``recorder_options`` to the :class:`~ledger.Recorder`.
    """

    def __init__(
        self,
        location: Any,
        study: str,
        case: str | None = None,
        *,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        hash_checkpoints: bool = False,
        recorder_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._session = Session(
            location, study, case, framework="lightning", recorder_options=recorder_options
        )
        self._params: dict[str, Any] = {}
        self._seed = seed
        self._config = dict(config or {})
        self._hash = hash_checkpoints
        self._saved: set[str] = set()

    # -- what Lightning asks of a logger ----------------------------------------------

    @property
    def name(self) -> str:
        return self._session.study

    @property
    def version(self) -> str:
        """The run id once the run started, else the case (or an empty string)."""
        run = self._session.run
        return run.id if run is not None else (self._session.case or "")

    @property
    def experiment(self) -> Session:
        """The recording session (``.recorder``, ``.run``)."""
        return self._session

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters become the case's params; the case is declared when the run
        starts, so params logged before the first value all count."""
        from lightning.fabric.utilities.logger import _convert_params

        params = plain(_convert_params(params))
        if not isinstance(params, dict):
            return
        if self._session.run is not None and not self._session.run.finished:
            new = {
                k: v
                for k, v in params.items()
                if self._params.get(k, v) != v or k not in self._params
            }
            if new:
                import warnings

                warnings.warn(
                    f"hyperparameters logged after the run started are not recorded "
                    f"(the case's params are fixed): {sorted(new)}",
                    stacklevel=2,
                )
            return
        self._params.update(params)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._ensure_run()
        self._session.log(metrics, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """The run's finish (see the module doc), committed at once; the Recorder is
        closed (a later value opens it again for a new run)."""
        run = self._session.run
        if run is None or run.finished:
            self._session.close()
            return
        exc = sys.exc_info()[1]
        mapped = STATUS.get(status, "failed")
        error = None
        if isinstance(exc, KeyboardInterrupt):
            mapped, error = "cancelled", "KeyboardInterrupt"
        elif mapped == "failed":
            error = (
                _exception_text(exc) if exc is not None else f"Lightning finalized with {status!r}"
            )
        self._session.close(mapped, error=error)

    def save(self) -> None:
        """Nothing to do: Lightning calls ``save()`` after every logged step, and a
        commit there cost a durable LMDB commit (two fsyncs, ~2 ms) per training step,
        2.3x a tiny model's fit. The Recorder commits in the background every
        ``interval`` seconds or ``batch_size`` events, and ``finalize`` commits the rest;
        a killed trainer loses at most the last interval, which a restart re-records
        (ids derive from content, so nothing doubles)."""

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record each checkpoint file the callback holds that is new (its top-k and its
        last), by reference."""
        paths = list(getattr(checkpoint_callback, "best_k_models", {}) or {})
        for attr in ("last_model_path", "best_model_path"):
            path = getattr(checkpoint_callback, attr, "")
            if path:
                paths.append(path)
        for path in paths:
            full = os.path.abspath(path)
            if full in self._saved or not os.path.isfile(full):
                continue
            self._saved.add(full)
            extra: dict[str, Any] = {"bytes": os.path.getsize(full)}
            if self._hash:
                extra["sha256"] = _sha256(full)
            self._ensure_run()
            self._session.artifact(f"checkpoint/{Path(full).name}", Path(full).as_uri(), **extra)

    # -- the run ---------------------------------------------------------------------

    def _ensure_run(self) -> None:
        run = self._session.run
        if run is not None and not run.finished:
            return
        import lightning

        seed = self._seed if self._seed is not None else env_seed("PL_GLOBAL_SEED")
        self._session.start(
            self._params,
            config=self._config or None,
            seed=seed,
            provenance={"lightning": lightning.__version__, "torch": _torch_version()},
        )


def _torch_version() -> str | None:
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", None) if torch is not None else None


def _exception_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
