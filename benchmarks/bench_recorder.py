"""What a runner pays per metric value through the ``Recorder``, commits to disk included.

Groups (``{size}``: 100k and 1M stepped values, 5 per ``run.log`` call; ``BENCH_SMOKE=1``:
1k, one round):

- ``recorder {size}``: a runner loop (a case per two runs, ``with case.run(seed=...)``,
  ``run.log(values, step=...)``, a final result per run) through ``Recorder`` with its
  default batch (4,096 events), with 1,000 and with 10,000, timed from construction to the last
  commit on exit — beside the same events handed to ``Ledger.append`` in batches of
  1,000 (the storage floor under the Recorder), a careful SQLite runner (rows buffered,
  ``executemany`` into an indexed runs/metrics schema every 1,000 events, WAL,
  ``synchronous=FULL``) and ``list.append`` of the same tuples (the floor of a Python
  call per log).
- ``recorder durable``: ``Recorder(durable=True)`` (one commit per event) beside SQLite
  with one transaction per event: both sit on the fsync floor.

``extra_info["us_per_value"]`` is the best round's time per metric value (target: under
2 µs with commits included). No timing is asserted.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import SMOKE
from gen import as_structs
from ledgers import SHAPES, SIZES, events_for, label
from peers.sqlite_schema import SqliteSchema

from ledger import Ledger, Recorder

ROUNDS = 1 if SMOKE else 3
DURABLE_EVENTS = 10 if SMOKE else 200
_count = itertools.count()


def runner_script(values: int) -> list[tuple[str, str, int | None, list[tuple[int | None, dict]]]]:
    """(case, run, seed, [(step, values)...]) per run, from the seeded stream."""
    runs: dict[str, tuple[str, int, list]] = {}
    for ev in events_for(values):
        kind = ev["type"]
        if kind == "run_started":
            runs[ev["run"]] = (ev["case"], ev["seed"], [])
        elif kind == "metrics_recorded":
            runs[ev["run"]][2].append((ev.get("step"), ev["values"]))
    return [(case, run, seed, logs) for run, (case, seed, logs) in runs.items()]


def record(path: str, script: list, *, batch_size: int | None = None, durable: bool = False) -> int:
    """The runner loop (the Recorder's default batch size unless given); returns the
    metric values logged."""
    n = 0
    sized = {} if batch_size is None else {"batch_size": batch_size}
    with Recorder(
        path,
        study="bench",
        objectives=[{"metric": "loss", "direction": "min"}],
        durable=durable,
        handle_signals=False,
        **sized,
    ) as rec:
        cases: dict = {}
        for case, _run, seed, logs in script:
            handle = cases.get(case)
            if handle is None:
                handle = cases[case] = rec.case(case, params={"lr": 0.1})
            with handle.run(seed=seed) as run:
                log = run.log
                for step, vals in logs:
                    log(vals, step=step)
                    n += len(vals)
    return n


def _fresh(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("rec") / f"r{next(_count)}.ledger")


def _per_value(benchmark, values: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["us_per_value"] = round(stats.stats.min / values * 1e6, 3)
    benchmark.extra_info["metric_values"] = values


@pytest.mark.parametrize(
    "how",
    [
        "recorder",
        "recorder batch=1000",
        "recorder batch=10000",
        "ledger.append",
        "sqlite runner",
        "list.append",
    ],
)
@pytest.mark.parametrize("values", SIZES, ids=[label(v) for v in SIZES])
def test_recorder(benchmark, tmp_path_factory, values, how):
    benchmark.group = f"recorder {label(values)}"
    runs, steps = SHAPES[values]
    expected = values + 2 * runs  # stepped values and a final (2 values) per run
    if how.startswith("recorder"):
        script = runner_script(values)
        batch = int(how.partition("=")[2]) if "=" in how else None

        def setup():
            return (_fresh(tmp_path_factory), script), {"batch_size": batch}

        n = benchmark.pedantic(record, setup=setup, rounds=ROUNDS, iterations=1)
        assert n == expected
    elif how == "ledger.append":
        events = as_structs(list(events_for(values)))
        chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]

        def setup():
            return (_fresh(tmp_path_factory),), {}

        def run(path):
            with Ledger(path) as ledger:
                for chunk in chunks:
                    ledger.append(chunk)
                return ledger.head.seq

        assert benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1) == len(events)
    elif how == "sqlite runner":
        events = list(events_for(values))
        chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]

        def setup():
            folder = tmp_path_factory.mktemp("sq")
            driver = SqliteSchema()
            driver.open(folder)
            return (driver, folder), {}

        def run(driver, folder):
            for chunk in chunks:
                driver.append(chunk)
            driver.close()
            return driver

        driver = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
        assert driver.load() == expected
    else:
        script = runner_script(values)

        def run():
            buf: list = []
            append = buf.append
            for _case, run_id, _seed, logs in script:
                for step, vals in logs:
                    append((run_id, step, dict(vals)))
            return sum(len(v) for _, _, v in buf)

        assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1) == expected
    _per_value(benchmark, values)


@pytest.mark.parametrize("how", ["recorder durable", "sqlite per event"])
def test_durable(benchmark, tmp_path_factory, how):
    """One durable commit per event: the fsync floor, ours beside SQLite's."""
    benchmark.group = "recorder durable"
    script = [
        ("c0", "r0", 0, [(s, {"loss": 1.0 / (s + 1), "acc": 0.5}) for s in range(DURABLE_EVENTS)])
    ]
    values = 2 * DURABLE_EVENTS
    if how == "recorder durable":

        def setup():
            return (_fresh(tmp_path_factory), script), {"durable": True}

        assert benchmark.pedantic(record, setup=setup, rounds=ROUNDS, iterations=1) == values
    else:
        events = [
            {"type": "study_created", "study": "bench"},
            {"type": "case_created", "study": "bench", "case": "c0"},
            {"type": "run_started", "study": "bench", "case": "c0", "run": "r0"},
        ] + [
            {"type": "metrics_recorded", "study": "bench", "run": "r0", "step": s, "values": v}
            for s, v in script[0][3]
        ]

        def setup():
            folder = tmp_path_factory.mktemp("sqd")
            driver = SqliteSchema()
            driver.open(folder)
            driver.append(events[:3])
            return (driver,), {}

        def run(driver):
            for ev in events[3:]:
                driver.append([ev])
            driver.close()
            return driver

        assert benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1).load() == values
    benchmark.extra_info["events"] = DURABLE_EVENTS
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["events_per_s"] = round(DURABLE_EVENTS / stats.stats.min)
