"""Shared by the reliability tests and their worker scripts (which run it from this folder).

Workers are separate scripts started with the current interpreter, never forked
(docs/reliability.md). Sizes come in pairs: the CI size, and the soak size used when SOAK=1
(``make soak``).
"""

from __future__ import annotations

import os
import random
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOAK = os.environ.get("SOAK", "") not in ("", "0")


def size(ci: int, soak: int) -> int:
    return soak if SOAK else ci


def make_batch(writer: int, batch: int, seed: int) -> list[dict[str, Any]]:
    """Batch ``batch`` of ``writer``: 1-40 events, ids and content fixed by the seed, so a
    writer that restarts re-sends exactly the same events."""
    rng = random.Random(f"{seed}:{writer}:{batch}")
    k = rng.randint(1, 40)
    study = f"w{writer}"
    events: list[dict[str, Any]] = []
    for i in range(k):
        mark = {"w": writer, "b": batch, "i": i, "k": k, "x": rng.random()}
        eid = f"w{writer}-b{batch}-e{i}"
        if batch == 0 and i == 0:
            events.append({"type": "study_created", "study": study, "id": eid, "config": mark})
        else:
            events.append(
                {
                    "type": "case_created",
                    "study": study,
                    "case": f"b{batch}-e{i}",
                    "id": eid,
                    "params": mark,
                }
            )
    return events


def read_acks(path: str) -> list[tuple[str, int, int, int]]:
    """Complete lines of a writer's oracle file: (kind, batch, appended-or-k, duplicates).

    Every line ends with `` .``: a write cut by a kill where it crossed a page boundary
    leaves a torn line (the next writer ends it with a newline), which is skipped, so
    its batch counts as unacked, as it should.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:
        kind, *rest = line.decode(errors="replace").split() or [""]
        if kind == "error":  # a writer's own consistency check failed: keep it visible
            raise AssertionError(f"{path}: a writer reported: {line.decode(errors='replace')}")
        if not rest or rest[-1] != "." or not all(v.isdigit() for v in rest[:-1]):
            continue  # torn
        vals = [int(v) for v in rest[:-1]] + [0, 0, 0]
        out.append((kind, vals[0], vals[1], vals[2]))
    return out


def open_acks(path: str) -> int:
    """The oracle file for appending, its torn last line (if any) ended first."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
    return fd


def last_acked(path: str) -> int:
    acks = [b for kind, b, _, _ in read_acks(path) if kind == "ack"]
    return max(acks) if acks else -1


def script(name: str, *args: Any, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``tests/reliability/<name>`` with this interpreter (never a fork)."""
    import subprocess  # not at module level: workers import this module too (start-up)
    import sysconfig

    env = dict(os.environ)
    paths = (ROOT, HERE, sysconfig.get_paths()["purelib"], env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("PYTHONHASHSEED", "0")
    # -S: the paths are given, so skip site's .pth processing (a fifth of start-up time,
    # which matters when R1 starts 200 of them).
    return subprocess.Popen(
        [sys.executable, "-S", os.path.join(HERE, name), *map(str, args)], env=env, **popen
    )


def fast_base() -> str | None:
    """A tmpfs folder for tests whose subject is not the disk (fsync costs ms per commit)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
