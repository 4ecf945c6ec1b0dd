"""A Keras 3 callback that records into the ledger (``pip install 'results-ledger[keras]'``).

.. code-block:: python

    from ledger.integrations.keras import LedgerCallback

    model.fit(x, y, epochs=10, callbacks=[LedgerCallback("results.ledger", study="mlp")])

- ``on_train_begin``: the run starts; the case's params are ``params`` (default: the
  optimizer's class and learning rate, the epochs and steps of the fit), the run's
  config the optimizer's config;
- ``on_epoch_end``: the epoch's logs (what ``History`` holds: ``loss``, ``val_loss``,
  the compiled metrics) at step = the epoch's index;
- ``on_train_batch_end``: the batch's logs as ``batch/<name>`` at step = the batches
  seen so far in the fit (every ``batch_every`` batches; 0 records none), so the batch
  curves never mix with the epoch values;
- ``on_train_end``: the run finishes ``completed``; a run still open when the process
  exits finishes ``failed`` (an exception ended it) or ``cancelled``.

Keras runs on any backend; the ledger needs none of them (``KERAS_BACKEND`` is yours).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from ._common import Session, plain

__all__ = ["LedgerCallback"]


class LedgerCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Record a ``fit`` into the study ``study`` of the ledger at ``location`` (a path,
    a ``postgresql://`` URL or an open :class:`~ledger.Ledger`).

    ``case`` names the case (default ``hp-<digest of the params>``); ``seed`` is the
    run's seed; ``recorder_options`` go to the :class:`~ledger.Recorder`.
    """

    def __init__(
        self,
        location: Any,
        study: str,
        case: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        batch_every: int = 1,
        recorder_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if batch_every < 0:
            raise ValueError("batch_every must be >= 0 (0 records no batch values)")
        self.session = Session(
            location, study, case, framework="keras", recorder_options=recorder_options
        )
        self.case_params = dict(params) if params is not None else None
        self.seed = seed
        self.batch_every = batch_every
        self._batches = 0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._batches = 0
        optimizer = getattr(self.model, "optimizer", None)
        fit = dict(self.params or {})
        params = self.case_params
        if params is None:
            params = {k: fit[k] for k in ("epochs", "steps") if fit.get(k) is not None}
            if optimizer is not None:
                params["optimizer"] = type(optimizer).__name__
                lr = _learning_rate(optimizer)
                if lr is not None:
                    params["learning_rate"] = lr
        config = {"fit": plain(fit)}
        if optimizer is not None:
            try:
                config["optimizer"] = plain(optimizer.get_config())
            except Exception:  # a custom optimizer without a config
                config["optimizer"] = type(optimizer).__name__
        self.session.start(
            params,
            config=config,
            seed=self.seed,
            provenance={"keras": keras.__version__, "backend": keras.backend.backend()},
        )

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        seen = self._batches
        self._batches += 1
        if self.batch_every and seen % self.batch_every == 0 and logs:
            self.session.log({f"batch/{k}": v for k, v in logs.items()}, seen)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.session.log(logs, int(epoch))

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self.session.close("completed")


def _learning_rate(optimizer: Any) -> float | None:
    """The optimizer's learning rate as the number it was given (a float32 variable's
    shortest spelling: 0.01, not 0.009999999776), or None for a schedule."""
    try:
        value = keras.ops.convert_to_numpy(optimizer.learning_rate)
        return float(str(value)) if value.ndim == 0 else None
    except Exception:  # a schedule, or a backend value that will not convert
        return None
