"""The Keras 3 callback (torch backend): the epoch values are History's."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

from integration_helpers import events, in_force, runs  # noqa: E402

from ledger.integrations.keras import LedgerCallback  # noqa: E402


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return x, x.sum(1, keepdims=True)


def test_two_epochs_equal_history(ledger_dir):
    x, y = _data()
    cb = LedgerCallback(ledger_dir, study="k", case="mlp", seed=3)
    history = _model().fit(
        x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[cb]
    )
    [run] = runs(ledger_dir, "k")
    assert (run["case"], run["status"], run["seed"]) == ("mlp", "completed", 3)
    values = {(m, s): v for (r, m, s), v in in_force(ledger_dir, "k").items()}
    epochs = {k: v for k, v in values.items() if not k[0].startswith("batch/")}
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert epochs == {
        (name, epoch): float(v)
        for name, series in history.history.items()
        for epoch, v in enumerate(series)
    }
    batches = sorted(s for m, s in values if m == "batch/loss")
    assert batches == list(range(6))  # 48 training samples / 16, two epochs
    # the last batch's running mean is the epoch's value
    assert values[("batch/loss", 5)] == pytest.approx(history.history["loss"][1])

    case = next(e.event for e in events(ledger_dir) if e.event.TYPE == "case_created")
    assert case.params == {"epochs": 2, "steps": 3, "optimizer": "Adam", "learning_rate": 0.01}
    started = next(e.event for e in events(ledger_dir) if e.event.TYPE == "run_started")
    assert started.provenance["backend"] == keras.backend.backend()


def test_batch_every_thins_the_batch_values(ledger_dir):
    x, y = _data()
    cb = LedgerCallback(ledger_dir, study="k", params={"width": 8}, batch_every=2)
    _model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    values = in_force(ledger_dir, "k")
    assert sorted(s for _, m, s in values if m == "batch/loss") == [0, 2, 4, 6]
    [run] = runs(ledger_dir, "k")
    assert run["case"].startswith("hp-")
