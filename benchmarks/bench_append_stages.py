"""Where an append's time goes: each stage of the hot path timed alone, on the same
events, beside the whole ``Ledger.append`` — the profile issue 7 asks for, reproducible.

    python benchmarks/bench_append_stages.py [--events N] [--rounds R] [--json out.json]

(``make bench`` runs it at 100,000 events and ``make bench-smoke`` at 2,000.)

The events are the seeded stream of the other benchmarks (metrics events of 5 values,
plus run starts and finishes), as wire dicts. Each stage is the library's own code or
the primitive it spends its time in, applied to the whole batch; ``µs/event`` is the best
round divided by the events. The stages do not add up exactly to the append (the append
also walks its lists, and the disk's fsync is in "commit"), but they show the floor:
what it costs per event just to convert, encode, digest, chain, index and store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen import study_events  # noqa: E402

from ledger import Ledger  # noqa: E402
from ledger.blocks import encode_block  # noqa: E402
from ledger.codec import _canonical, event_from_obj  # noqa: E402
from ledger.log import BLOCK_MAX_EVENTS, block_columns  # noqa: E402
from ledger.rules import check_names  # noqa: E402

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover
    from hashlib import blake2b


def best(fn: Any, rounds: int) -> float:
    out = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def measure(n_events: int, rounds: int) -> dict[str, Any]:
    wire = [e for e in study_events("stages", runs=max(1, n_events // 1000), steps=1000)]
    wire = wire[:n_events]
    n = len(wire)
    structs = [event_from_obj(e) for e in wire]
    contents = [_canonical.encode(e) for e in structs]
    digests = [blake2b(c, digest_size=16).digest() for c in contents]
    seq8s = [s.to_bytes(8, "big") for s in range(1, n + 1)]
    stored = [b"\x94\xcf" + s8 + b"\xd9\x20" + d.hex().encode() + b"\xcf" + bytes(8) + c
              for s8, d, c in zip(seq8s, digests, contents)]  # fmt: skip

    def chain() -> None:
        h = bytes(32)
        for s8, data in zip(seq8s, stored):
            h = blake2b(h + s8 + data, digest_size=32).digest()

    def names() -> None:
        seen: set[str] = set()
        for e in structs:
            if e.study not in seen or getattr(e, "run", None) not in seen:
                check_names(e, seen)

    def columns() -> None:
        for start in range(0, n, BLOCK_MAX_EVENTS):
            block = structs[start : start + BLOCK_MAX_EVENTS]
            block_columns(block, [0] * len(block))

    def blocks() -> None:
        for start in range(0, n, BLOCK_MAX_EVENTS):
            part = stored[start : start + BLOCK_MAX_EVENTS]
            encode_block(part, [bytes(32)] * len(part), b"", first_seq=start + 1)

    def id_sort() -> None:
        items = [(d, s8 + d) for d, s8 in zip(digests, seq8s)]
        items.sort()

    stages: dict[str, Any] = {
        "convert wire dicts to checked structs (event_from_obj)": lambda: [
            event_from_obj(e) for e in wire
        ],
        "canonical msgpack encode": lambda: [_canonical.encode(e) for e in structs],
        "content digest for the id (BLAKE2b-128)": lambda: [
            blake2b(c, digest_size=16).digest() for c in contents
        ],
        "name checks": names,
        "per-event chain hash (BLAKE2b-256)": chain,
        "metric columns": columns,
        "block encoding": blocks,
        "id index entries, sorted": id_sort,
    }
    rows = []
    for label, fn in stages.items():
        rows.append({"stage": label, "us_per_event": round(best(fn, rounds) / n * 1e6, 3)})

    work = Path(tempfile.mkdtemp(prefix="stages-"))
    try:

        def append_all() -> None:
            path = work / f"a{time.perf_counter_ns()}.ledger"
            with Ledger(path) as led:
                for i in range(0, n, 10_000):
                    led.append(wire[i : i + 10_000])
            shutil.rmtree(path, ignore_errors=True)

        total = best(append_all, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stage_sum = sum(r["us_per_event"] for r in rows)
    return {
        "events": n,
        "rounds": rounds,
        "load_average": list(os.getloadavg()),
        "stages": rows,
        "sum_of_stages_us_per_event": round(stage_sum, 3),
        "append_us_per_event": round(total / n * 1e6, 3),
        "append_events_per_s": round(n / total),
    }


def render(res: dict[str, Any]) -> str:
    lines = [
        f"{res['events']:,} events, best of {res['rounds']}, load average "
        f"{' '.join(f'{x:.2f}' for x in res['load_average'])}",
        "",
        "| stage | µs / event |",
        "| --- | ---: |",
    ]
    lines += [f"| {r['stage']} | {r['us_per_event']:.2f} |" for r in res["stages"]]
    lines += [
        f"| **sum of the stages** | **{res['sum_of_stages_us_per_event']:.2f}** |",
        f"| `Ledger.append`, batches of 10,000 (commits included) | "
        f"{res['append_us_per_event']:.2f} ({res['append_events_per_s']:,} events/s) |",
    ]
    return "\n".join(lines)


def test_append_stages(benchmark) -> None:
    """``make bench``: the profile at 100,000 events (``make bench-smoke``: 2,000), the
    stages in ``extra_info``; the whole append is what the benchmark times."""
    from conftest import SMOKE

    n = 2_000 if SMOKE else 100_000
    res = benchmark.pedantic(measure, args=(n, 1), rounds=1, iterations=1)
    assert res["events"] == n and len(res["stages"]) == 8
    assert all(r["us_per_event"] > 0 for r in res["stages"]) and res["append_us_per_event"] > 0
    benchmark.extra_info.update(
        {r["stage"]: r["us_per_event"] for r in res["stages"]},
        append_us_per_event=res["append_us_per_event"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args(argv)
    res = measure(args.events, args.rounds)
    print(render(res))
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
