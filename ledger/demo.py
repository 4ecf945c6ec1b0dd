"""``ledger demo``: a real, small study recorded live through the Recorder.

A one-hidden-layer network is trained with numpy on a generated two-spirals data set.
Stage 0 sweeps learning rate and width (one setting diverges: its runs fail); after each
stage the runner asks ``choose`` for the stage's survivors (the ``ledger demo`` command
passes the projections' ranking on validation loss: ``cli.commands.demo.by_ranking``),
records that decision with ``selection_recorded`` and derives the next stage's cases
from the survivors by applying changes — the ML reading of ECOs: halve the learning
rate, widen the layer, add weight decay, train longer. Every number comes from the
computation; nothing is canned.

This is a runner, like the ones in ``examples/``: it uses only ``ledger`` (the Recorder)
and is handed the ranking, since ``ledger`` never imports ``projections``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .log import Ledger
from .recorder import Recorder

__all__ = ["ECOS", "Choice", "Chooser", "run_demo", "spirals", "train_mlp"]


class Choice(NamedTuple):
    """A stage's survivor decision: the cases kept, the policy that kept them (recorded
    with ``selection_recorded``) and the best case's score."""

    survivors: list[str]
    policy: dict[str, Any]
    best: float


Chooser = Callable[[Ledger, str, int, int], Choice]
"""``choose(ledger, study, stage, top)``: the ``top`` survivors of ``stage``."""

ECOS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "halve_lr": ("optimizer", lambda p: {**p, "lr": p["lr"] / 2}),
    "widen": ("architecture", lambda p: {**p, "hidden": p["hidden"] * 2}),
    "add_l2": ("regularisation", lambda p: {**p, "l2": max(p["l2"] * 10, 1e-4)}),
    "train_longer": ("schedule", lambda p: {**p, "epochs": p["epochs"] * 2}),
}


def spirals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved noisy spirals: a data set a linear model cannot separate."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1.0, n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3 * np.pi)
    x += rng.normal(0, 0.04, x.shape)
    return x, label.astype(np.float64)


def train_mlp(
    params: dict[str, Any],
    seed: int,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    on_epoch: Callable[[int, float, float, float], None],
) -> dict[str, float]:
    """Full-batch gradient descent with momentum on a tanh network; raises
    ``FloatingPointError`` when the loss diverges."""
    xtr, ytr, xva, yva = data
    rng = np.random.default_rng(seed)
    h = int(params["hidden"])
    w1 = rng.normal(0, 1.0, (2, h))
    b1 = np.zeros(h)
    w2 = rng.normal(0, 1.0 / np.sqrt(h), h)
    b2 = 0.0
    vel: list[Any] = [np.zeros_like(w1), np.zeros_like(b1), np.zeros_like(w2), 0.0]
    lr, l2 = float(params["lr"]), float(params["l2"])

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.tanh(x @ w1 + b1)
        z = np.clip(a @ w2 + b2, -30, 30)
        return a, 1 / (1 + np.exp(-z))

    def loss(p: np.ndarray, y: np.ndarray) -> float:
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    best = np.inf
    for epoch in range(int(params["epochs"])):
        a, p = forward(xtr)
        g = (p - ytr) / len(ytr)
        gw2 = a.T @ g + l2 * w2
        gb2 = float(g.sum())
        ga = np.outer(g, w2) * (1 - a**2)
        gw1 = xtr.T @ ga + l2 * w1
        gb1 = ga.sum(axis=0)
        for i, grad in enumerate((gw1, gb1, gw2, gb2)):
            vel[i] = 0.9 * vel[i] - lr * grad
        w1, b1, w2, b2 = w1 + vel[0], b1 + vel[1], w2 + vel[2], b2 + vel[3]
        train_loss = loss(p, ytr)
        _, pv = forward(xva)
        val_loss = loss(pv, yva)
        val_acc = float(np.mean((pv > 0.5) == (yva > 0.5)))
        if not np.isfinite(train_loss) or train_loss > 5 or np.abs(w1).max() > 1e3:
            raise FloatingPointError(f"training diverged at epoch {epoch} (lr={lr})")
        on_epoch(epoch, train_loss, val_loss, val_acc)
        best = min(best, val_loss)
    return {
        "val_loss": val_loss,
        "val_acc": val_acc,
        "train_loss": train_loss,
        "best_val_loss": float(best),
        "parameters": float(w1.size + b1.size + w2.size + 1),
    }


def run_demo(
    path: str | os.PathLike[str],
    *,
    choose: Chooser,
    study: str = "spirals-mlp",
    seed: int = 0,
    seeds_per_case: int = 2,
    survivors: int = 2,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Record the demo study into the ledger at ``path``, choosing each stage's
    survivors with ``choose``; returns what it did."""
    x, y = spirals(800, seed)
    data = (x[:600], y[:600], x[600:], y[600:])
    base_grid = [
        {"lr": lr, "hidden": h, "l2": 0.0, "epochs": 120}
        for lr in (0.05, 0.2, 1.0)
        for h in (8, 16)
    ] + [{"lr": 40.0, "hidden": 16, "l2": 0.0, "epochs": 120}]
    config = {
        "data": "two spirals, 600 train / 200 validation",
        "model": "2-H-1 tanh network, full-batch GD with momentum 0.9",
        "seed": seed,
    }
    summary: dict[str, Any] = {"study": study, "stages": []}
    with Recorder(
        path,
        study=study,
        config=config,
        description="numpy MLP sweep; survivors of each stage get changes applied",
        objectives=[{"metric": "val_loss", "direction": "min"}],
        handle_signals=False,
    ) as rec:

        def run_case(case: Any, params: dict[str, Any]) -> None:
            for s in range(seeds_per_case):
                try:
                    with case.run(seed=s, config={"data_seed": seed}) as run:

                        def on_epoch(e: int, tr: float, va: float, acc: float) -> None:
                            run.log({"train_loss": tr, "val_loss": va, "val_acc": acc}, step=e)

                        run.log(train_mlp(params, s, data, on_epoch))
                except FloatingPointError:
                    pass  # recorded as a failed run with the error text

        cases: list[tuple[Any, dict[str, Any]]] = []
        for params in base_grid:
            name = f"lr={params['lr']:g},h={params['hidden']}"
            cases.append((rec.case(name, params=params, stage=0), params))
        params_of = {c.id: p for c, p in cases}
        for stage in range(3):
            for case, params in cases:
                run_case(case, params)
            rec.flush()
            with Ledger(path, create=False) as ledger:
                choice = choose(ledger, study, stage, survivors)
            keep = choice.survivors
            rec.select(stage, [*keep], policy=choice.policy)  # a list of str | CaseHandle
            say(
                f"stage {stage}: {len(cases)} cases, survivors {', '.join(keep)} "
                f"(best val_loss {choice.best:.4f})"
            )
            summary["stages"].append({"stage": stage, "cases": len(cases), "survivors": keep})
            if stage == 2:
                break
            cases = []
            ecos = ("halve_lr", "widen", "add_l2") if stage == 0 else ("halve_lr", "train_longer")
            for parent in keep:
                for eco in ecos:
                    eco_class, change = ECOS[eco]
                    params = change(params_of[parent])
                    child = rec.derive(parent, eco=eco, eco_class=eco_class, params=params)
                    params_of[child.id] = params
                    cases.append((child, params))
    return summary
