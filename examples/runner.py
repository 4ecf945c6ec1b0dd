"""A Python runner that can be killed at any moment and restarted.

Each start asks the ledger what is already done (``Recorder.resume()``), closes the runs
a killed predecessor left open, skips finished cases and re-runs the rest as a new
attempt. Run it twice: the second run appends nothing new.

    python examples/runner.py --ledger results.ledger
"""

from __future__ import annotations

import argparse
import math
import time

from ledger import Recorder


def train(run, lr: float, steps: int, pause: float) -> None:
    """A stand-in for real training: a loss that decays at a rate set by ``lr``."""
    loss = 1.0
    for step in range(steps):
        loss *= math.exp(-lr)
        run.log({"loss": loss}, step=step)
        time.sleep(pause)
    run.log({"loss": loss, "accuracy": 1.0 - loss})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default="results.ledger")
    parser.add_argument("--study", default="resumable")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.002)
    args = parser.parse_args()
    with Recorder(
        args.ledger,
        study=args.study,
        config={"cases": args.cases, "steps": args.steps},
        objectives=[{"metric": "loss", "direction": "min"}],
        interval=0.05,
    ) as rec:
        plan = rec.resume()
        for i in range(args.cases):
            lr = round(0.05 * (i + 1), 4)
            case = rec.case(f"lr={lr}", params={"lr": lr})
            if plan.done(case):
                continue
            with case.run(seed=0) as run:
                train(run, lr, args.steps, args.pause)
    print("done")


if __name__ == "__main__":
    main()
