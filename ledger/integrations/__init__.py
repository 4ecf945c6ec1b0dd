"""Plug the ledger into the frameworks people already record from (docs/architecture.md, Report, integrations, SQL).

One module per framework, each an optional extra, each importing its framework only
when it is used (so ``import ledger`` stays light) and each recording through the
:class:`~ledger.recorder.Recorder` (buffered, idempotent, signal-safe, resumable):

- :mod:`ledger.integrations.optuna` — ``LedgerCallback`` for ``study.optimize``
  (``pip install 'results-ledger[optuna]'``);
- :mod:`ledger.integrations.lightning` — ``LedgerLogger``, a Lightning ``Logger``
  (``[lightning]``);
- :mod:`ledger.integrations.transformers` — ``LedgerCallback``, a Hugging Face
  ``TrainerCallback`` (``[transformers]``);
- :mod:`ledger.integrations.keras` — ``LedgerCallback``, a Keras 3 callback
  (``[keras]``).
"""

from __future__ import annotations
