"""A Hugging Face ``TrainerCallback`` that records into the ledger
(``pip install 'results-ledger[transformers]'``).

.. code-block:: python

    from ledger.integrations.transformers import LedgerCallback

    trainer = Trainer(model, args, train_dataset=ds,
                      callbacks=[LedgerCallback("results.ledger", study="tiny-bert")])

- ``on_train_begin``: the run starts; the case's params are the training
  hyperparameters (``params=`` to choose them), the run's config is every training
  argument (``TrainingArguments.to_dict()``: tokens masked by Transformers, and secret
  keys redacted by the ledger before anything is stored), its seed ``args.seed``;
- ``on_log`` and ``on_evaluate``: every number of the logs at ``state.global_step``
  (what ``trainer.state.log_history`` holds, ``epoch`` included); a value both hooks
  report at one step is recorded once;
- ``on_train_end``: the run finishes ``completed``; a run still open when the process
  exits finishes ``failed`` (an exception ended it) or ``cancelled``;
- world process zero only (``state.is_world_process_zero``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

from ._common import Session

__all__ = ["HYPERPARAMETERS", "LedgerCallback"]

#: The training arguments that make a case's params when ``params`` is not given.
HYPERPARAMETERS = (
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "optim",
)


class LedgerCallback(TrainerCallback):  # type: ignore[misc]
    """Record a ``Trainer``'s run into the study ``study`` of the ledger at ``location``
    (a path, a ``postgresql://`` URL or an open :class:`~ledger.Ledger`).

    ``case`` names the case (default ``hp-<digest of the params>``); ``params`` replaces
    the default hyperparameters as the case's params; ``recorder_options`` go to the
    :class:`~ledger.Recorder`.
    """

    def __init__(
        self,
        location: Any,
        study: str,
        case: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        recorder_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = Session(
            location, study, case, framework="transformers", recorder_options=recorder_options
        )
        self.params = dict(params) if params is not None else None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._start(args, kwargs.get("model"))

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero:
            self._record(args, state, logs, kwargs.get("model"))

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero:
            self._record(args, state, metrics, kwargs.get("model"))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.session.close("completed")

    # -- helpers ---------------------------------------------------------------------

    def _record(self, args: Any, state: Any, values: Mapping[str, Any] | None, model: Any) -> None:
        run = self.session.run
        if run is None or run.finished:
            self._start(args, model)  # evaluate() outside train(): a run of its own
        self.session.log(values, int(state.global_step))

    def _start(self, args: Any, model: Any) -> None:
        import transformers

        config = args.to_dict()
        params = self.params
        if params is None:
            params = {k: config[k] for k in HYPERPARAMETERS if k in config}
        provenance: dict[str, Any] = {"transformers": transformers.__version__}
        if model is not None:
            provenance["model"] = type(model).__name__
        torch = __import__("sys").modules.get("torch")
        if torch is not None:
            provenance["torch"] = torch.__version__
        self.session.start(
            params, config=config, seed=getattr(args, "seed", None), provenance=provenance
        )
