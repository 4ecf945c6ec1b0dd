"""The Trainer callback, with a tiny BERT built from a config (nothing downloaded):
the ledger's steps and values are trainer.state.log_history's."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from integration_helpers import events, in_force, runs  # noqa: E402

from ledger.integrations.transformers import LedgerCallback  # noqa: E402

SECRET = "hf_Zq8pW2nX5vB7mK1rT4yU6iO9aS3dF0gH"


class Parity(torch.utils.data.Dataset):
    """Token sequences labelled by the parity of their sum."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)
        self.labels = self.ids.sum(1) % 2

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": self.labels[i],
        }


def _trainer(tmp_path, callback, **args):
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=3,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **args,
    )
    return transformers.Trainer(
        model=model,
        args=targs,
        train_dataset=Parity(24, 1),
        eval_dataset=Parity(8, 2),
        callbacks=[callback],
    )


def test_steps_and_values_match_the_log_history(tmp_path, ledger_dir):
    cb = LedgerCallback(ledger_dir, study="hf", case="tiny-bert")
    trainer = _trainer(tmp_path, cb, hub_token=SECRET)
    trainer.train()

    expected: dict[tuple[str, int], float] = {}
    for entry in trainer.state.log_history:
        for name, value in entry.items():
            if name != "step" and isinstance(value, (int, float)):
                expected[(name, entry["step"])] = float(value)
    [run] = runs(ledger_dir, "hf")
    got = {(m, s): v for (r, m, s), v in in_force(ledger_dir, "hf").items() if r == run["run"]}
    assert got == expected
    assert {s for _, s in got} == {2, 3, 4, 6}  # logs every 2 steps, evaluations every 3
    assert ("eval_loss", 3) in got and ("train_loss", 6) in got
    assert (run["case"], run["status"], run["seed"]) == ("tiny-bert", "completed", 42)

    evs = [e.event for e in events(ledger_dir)]
    started = next(e for e in evs if e.TYPE == "run_started")
    assert started.config["max_steps"] == 6 and started.config["learning_rate"] == 1e-3
    assert started.config["hub_token"] == "[redacted]"
    assert started.provenance["model"] == "BertForSequenceClassification"
    case = next(e for e in evs if e.TYPE == "case_created")
    assert case.params["learning_rate"] == 1e-3 and "seed" not in case.params
    with open(os.path.join(ledger_dir, "data.mdb"), "rb") as f:
        assert SECRET.encode() not in f.read()  # never stored, not even in the raw file
    # evaluation metrics reach both on_log and on_evaluate: recorded once
    metrics = [e for e in evs if e.TYPE == "metrics_recorded" and "eval_loss" in e.values]
    assert len(metrics) == 2


def test_only_world_process_zero_records(tmp_path, ledger_dir):
    cb = LedgerCallback(ledger_dir, study="hf")
    state = transformers.TrainerState(is_world_process_zero=False, global_step=3)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    control = transformers.TrainerControl()
    cb.on_train_begin(args, state, control)
    cb.on_log(args, state, control, logs={"loss": 1.0})
    cb.on_evaluate(args, state, control, metrics={"eval_loss": 1.0})
    cb.on_train_end(args, state, control)
    assert not os.path.exists(ledger_dir)
