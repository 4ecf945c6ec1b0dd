"""Several worker processes record into one ledger at once.

LMDB serialises writers, so each worker simply opens its own Recorder on the same path.
Workers are started with the 'spawn' method: an LMDB environment must never cross
fork().

    python examples/multiprocess_sweep.py --ledger results.ledger --workers 4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random

from ledger import Recorder


def worker(path: str, study: str, index: int, workers: int, cases: int) -> None:
    with Recorder(path, study=study, config={"workers": workers}) as rec:
        for i in range(index, cases, workers):
            width = 2 ** (i % 5 + 3)
            case = rec.case(f"width={width}-seed={i}", params={"width": width})
            rng = random.Random(i)
            with case.run(seed=i) as run:
                score = 0.0
                for epoch in range(10):
                    score += rng.random() / (epoch + 1)
                    run.log({"score": score}, step=epoch)
                run.log({"score": score, "width": width})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default="results.ledger")
    parser.add_argument("--study", default="parallel-sweep")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cases", type=int, default=16)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=worker, args=(args.ledger, args.study, i, args.workers, args.cases))
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise SystemExit(f"workers failed with exit codes {failed}")
    print("done")


if __name__ == "__main__":
    main()
