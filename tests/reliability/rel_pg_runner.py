"""R21 runner: records a study through the Recorder into a PostgreSQL ledger, resuming
what a previous life did, slowly enough that the server can be restarted under it.

    python rel_pg_runner.py URL CASES STEPS

Prints ``ready`` once its Recorder is open and ``done`` at the end.
"""

from __future__ import annotations

import sys
import time

from ledger import Recorder


def main() -> None:
    url, cases, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Recorder(url, study="r21", interval=0.1, retry_max=0.5) as rec:
        plan = rec.resume()
        print("ready", flush=True)
        for c in range(cases):
            case = rec.case(f"c{c}", params={"c": c})
            if plan.done(case):
                continue
            with case.run(seed=c) as run:
                for step in range(steps):
                    run.log({"loss": 1.0 / (1 + step + c)}, step=step)
                    time.sleep(0.01)
                run.log({"final": float(c)})
    print("done", flush=True)


if __name__ == "__main__":
    main()
