"""What each integration costs a training loop: the framework with the integration
beside the same framework with no logger, in the same run.

Groups (``STEPS`` optimizer steps of a tiny model on the CPU, every step logged: the
worst case for a logger):

- ``integration lightning``: ``Trainer.fit`` with ``logger=False`` / with
  ``LedgerLogger`` (``log_every_n_steps=1``);
- ``integration transformers``: ``Trainer.train`` without callbacks / with
  ``LedgerCallback`` (``logging_steps=1``);
- ``integration keras``: ``model.fit`` without callbacks / with ``LedgerCallback``
  (every batch and every epoch logged);
- ``integration optuna``: ``study.optimize`` of ``TRIALS`` trials of a tiny numpy
  model (an in-memory storage) without callbacks / with ``LedgerCallback`` (one commit
  per trial).

``extra_info["ms_per_step"]`` is the best round's time per step (per trial for Optuna);
the overhead is the difference between the two rows of a group, as a share of the
no-logger row. Target: under 5% of a tiny model's training step. ``BENCH_SMOKE=1``:
a few steps, one round. No timing is asserted.
"""

from __future__ import annotations

import itertools
import os

import pytest
from conftest import SMOKE

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS = 8 if SMOKE else 300
TRIALS = 4 if SMOKE else 100
ROUNDS = 1 if SMOKE else 5
HOW = ["no logger", "ledger"]
_count = itertools.count()


def _ledger(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("int") / f"b{next(_count)}.ledger")


def _per_step(benchmark, steps: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["ms_per_step"] = round(stats.stats.min / steps * 1e3, 4)
    benchmark.extra_info["steps"] = steps


@pytest.mark.parametrize("how", HOW)
def test_lightning(benchmark, tmp_path_factory, how):
    L = pytest.importorskip("lightning")
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    from ledger.integrations.lightning import LedgerLogger

    benchmark.group = "integration lightning"

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(8, 1)

        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x = torch.randn(STEPS * 4, 8)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)

    def setup():
        logger = LedgerLogger(_ledger(tmp_path_factory), "bench") if how == "ledger" else False
        trainer = L.Trainer(
            max_steps=STEPS,
            logger=logger,
            accelerator="cpu",
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
        )
        return (trainer, Tiny()), {}

    benchmark.pedantic(lambda t, m: t.fit(m, data), setup=setup, rounds=ROUNDS, iterations=1)
    _per_step(benchmark, STEPS)


@pytest.mark.parametrize("how", HOW)
def test_transformers(benchmark, tmp_path_factory, how):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from ledger.integrations.transformers import LedgerCallback

    benchmark.group = "integration transformers"

    class Data(torch.utils.data.Dataset):
        def __init__(self, n: int) -> None:
            self.ids = torch.randint(0, 50, (n, 8), generator=torch.Generator().manual_seed(n))

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.ids[i], "labels": self.ids[i].sum() % 2}

    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    out = str(tmp_path_factory.mktemp("hf"))

    def setup():
        args = transformers.TrainingArguments(
            out,
            max_steps=STEPS,
            logging_steps=1,
            per_device_train_batch_size=4,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
        )
        callbacks = [LedgerCallback(_ledger(tmp_path_factory), "bench")] if how == "ledger" else []
        trainer = transformers.Trainer(
            model=transformers.BertForSequenceClassification(cfg),
            args=args,
            train_dataset=Data(STEPS * 4),
            callbacks=callbacks,
        )
        return (trainer,), {}

    benchmark.pedantic(lambda t: t.train(), setup=setup, rounds=ROUNDS, iterations=1)
    _per_step(benchmark, STEPS)


@pytest.mark.parametrize("how", HOW)
def test_keras(benchmark, tmp_path_factory, how):
    keras = pytest.importorskip("keras")
    import numpy as np

    from ledger.integrations.keras import LedgerCallback

    benchmark.group = "integration keras"
    x = np.random.default_rng(0).normal(size=(STEPS * 4, 8)).astype("float32")
    y = x.sum(1)

    def setup():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callbacks = [LedgerCallback(_ledger(tmp_path_factory), "bench")] if how == "ledger" else []
        return (model, callbacks), {}

    def fit(model, callbacks):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=callbacks)

    benchmark.pedantic(fit, setup=setup, rounds=ROUNDS, iterations=1)
    _per_step(benchmark, STEPS)


@pytest.mark.parametrize("how", HOW)
def test_optuna(benchmark, tmp_path_factory, how):
    optuna = pytest.importorskip("optuna")
    import numpy as np

    from ledger.integrations.optuna import LedgerCallback

    benchmark.group = "integration optuna"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8))
    y = x.sum(1)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        w = np.zeros(8)
        for step in range(20):  # a tiny linear model, 20 steps of gradient descent
            w -= lr * x.T @ (x @ w - y) / len(y)
            if step % 5 == 4:
                trial.report(float(np.mean((x @ w - y) ** 2)), step)
        return float(np.mean((x @ w - y) ** 2))

    def setup():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        callbacks = [LedgerCallback(_ledger(tmp_path_factory), "bench")] if how == "ledger" else []
        return (study, callbacks), {}

    def run(study, callbacks):
        study.optimize(objective, n_trials=TRIALS, callbacks=callbacks)
        for cb in callbacks:
            cb.close()

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _per_step(benchmark, TRIALS)
