"""The Lightning logger, inside a real Trainer: what the ledger holds is what the logger
received; finalize's statuses; checkpoints as artifacts; rank zero only."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

import pytest

L = pytest.importorskip("lightning")
torch = pytest.importorskip("torch")

from integration_helpers import events, in_force, runs  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from ledger.integrations.lightning import LedgerLogger  # noqa: E402


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 4, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
        )

    def training_step(self, batch, i):
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("loss went to NaN")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Capturing(LedgerLogger):
    """The real logger, noting every call Lightning made to it."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.received: list[tuple[dict, int | None]] = []

    def log_metrics(self, metrics, step=None):
        self.received.append((dict(metrics), step))
        super().log_metrics(metrics, step)


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def _trainer(tmp_path, logger, **kw) -> L.Trainer:
    return L.Trainer(
        max_epochs=2,
        logger=logger,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(tmp_path / "root"),
        **kw,
    )


def test_curves_equal_what_the_logger_received(tmp_path, ledger_dir):
    torch.manual_seed(0)
    from lightning.pytorch.callbacks import ModelCheckpoint

    logger = Capturing(ledger_dir, study="lit", case="tiny")
    keep_all = ModelCheckpoint(save_top_k=-1)  # both epochs' files stay on disk
    _trainer(tmp_path, logger, callbacks=[keep_all]).fit(Tiny(lr=0.05, hidden=4), _data(), _data())

    expected: dict[tuple[str, int | None], float] = {}
    for metrics, step in logger.received:
        for name, value in metrics.items():
            expected[(name, step)] = float(value)  # a later call at the same step wins
    run_id = logger.version
    got = {(m, s): v for (r, m, s), v in in_force(ledger_dir, "lit").items() if r == run_id}
    assert got == expected
    assert {m for m, _ in got} == {"train_loss", "val_loss", "epoch"}
    assert sorted(s for m, s in got if m == "train_loss") == list(range(8))

    [run] = runs(ledger_dir, "lit")
    assert (run["case"], run["status"], run["artifacts"]) == ("tiny", "completed", 2)
    case = next(e.event for e in events(ledger_dir) if e.event.TYPE == "case_created")
    assert case.params == {"lr": 0.05, "hidden": 4, "fail_at": -1}
    arts = [e.event for e in events(ledger_dir) if e.event.TYPE == "artifact_recorded"]
    for art in arts:
        path = unquote(urlparse(art.uri).path)
        assert art.name.startswith("checkpoint/") and os.path.getsize(path) == art.bytes
    started = next(e.event for e in events(ledger_dir) if e.event.TYPE == "run_started")
    assert started.provenance["lightning"] == L.__version__


def test_a_failing_fit_finishes_the_run_failed(tmp_path, ledger_dir):
    logger = LedgerLogger(ledger_dir, study="lit")
    with pytest.raises(RuntimeError, match="NaN"):
        _trainer(tmp_path, logger).fit(Tiny(fail_at=3), _data())
    [run] = runs(ledger_dir, "lit")
    assert run["status"] == "failed" and run["error"] == "RuntimeError: loss went to NaN"
    assert run["case"].startswith("hp-")  # named by its hyperparameters


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("success", "completed"),
        ("failed", "failed"),
        ("aborted", "cancelled"),
        ("finished", "interrupted"),
    ],
)
def test_finalize_maps_each_status(ledger_dir, status, expected):
    logger = LedgerLogger(ledger_dir, study="s", case="c")
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize(status)
    assert [r["status"] for r in runs(ledger_dir, "s")] == [expected]


def test_a_keyboard_interrupt_is_cancelled(ledger_dir):
    logger = LedgerLogger(ledger_dir, study="s", case="c")
    logger.log_metrics({"loss": 1.0}, step=0)
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        logger.finalize("failed")  # what Lightning calls while handling it
    [run] = runs(ledger_dir, "s")
    assert (run["status"], run["error"]) == ("cancelled", "KeyboardInterrupt")


def test_other_ranks_record_nothing(ledger_dir, monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = LedgerLogger(ledger_dir, study="s", case="c")
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert not os.path.exists(ledger_dir)  # the ledger was never opened
