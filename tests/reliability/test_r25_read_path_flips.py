"""R25: bit flips in a stored block's event and column regions never become a wrong
figure.

LMDB has no page checksums, and before format 3 a flipped bit in a block's metric
columns made ``rank``, ``stats`` and ``export`` silently wrong with exit 0. Every read
now checks the block's checksums for the region it uses. Each trial flips one bit of a
compacted copy (so the block's bytes are in ``data.mdb`` exactly once), inside the
events or the columns of one block, and runs every read command: each must either exit
0 with exactly the pristine copy's output, or exit 1 with one line naming the block.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rel_common import size

from cli.main import COMMANDS, cli
from ledger import Ledger
from ledger.blocks import BlockView
from tests.projections.export.seeded_study import seeded_events

STUDY = "chip"


def _commands(out: Path) -> list[tuple[str, list[str], Path | None]]:
    """(name, arguments, file the command writes) for every read command there is."""
    wanted = [
        ("log", ["log", "--json"], None),
        ("rank", ["rank", "--study", STUDY, "--json"], None),
        ("stats", ["stats", "--study", STUDY, "--metric", "qor", "--json"], None),
        (
            "export",
            ["export", "--study", STUDY, "--format", "csv", "--out", str(out / "x")],
            out / "x",
        ),
        ("report", ["report", "--study", STUDY, "--out", str(out / "r.html")], out / "r.html"),
        (
            "sql",
            ["sql", "SELECT run, metric, step, value FROM metrics", "--study", STUDY, "--json"],
            None,
        ),
    ]
    have_duckdb = importlib.util.find_spec("duckdb") is not None  # the [sql] extra
    return [c for c in wanted if c[0] in COMMANDS and (c[0] != "sql" or have_duckdb)]


def _run(path: str, args: list[str], written: Path | None) -> tuple[int, bytes, str]:
    if written is not None:
        shutil.rmtree(written, ignore_errors=True) if written.is_dir() else written.unlink(
            missing_ok=True
        )
    result = CliRunner().invoke(cli, ["--ledger", path, *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash is never an acceptable answer
    body = result.stdout_bytes
    if written is not None and result.exit_code == 0:
        files = sorted(written.rglob("*")) if written.is_dir() else [written]
        body += b"".join(f.read_bytes() for f in files if f.is_file() and f.name != "manifest.json")
    return result.exit_code, body, result.stderr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[str, list[tuple[int, bytes, int, int]]]:
    """A compacted ledger of a seeded study, and each block's (first seq, bytes, events
    region, columns region)."""
    root = tmp_path_factory.mktemp("r25")
    live = str(root / "live.ledger")
    events = seeded_events(STUDY, n_cases=8, attempts=2, steps=30)
    with Ledger(live) as led:
        for i in range(0, len(events), 90):
            led.append(events[i : i + 90])
        copy = str(root / "pristine.ledger")
        os.mkdir(copy)
        led._store.copy(copy, compact=True)
    blocks = []
    with Ledger(copy, readonly=True) as led, led._store.read() as view:
        for first, data, _ in view.blocks(0):
            block = BlockView(first, data)
            raw = bytes(data)
            blocks.append((first, raw, block.data_end, len(raw)))
    assert len(blocks) >= 4
    return copy, blocks


def test_r25_flips_in_events_and_columns_are_errors_or_exact(pristine, tmp_path, seed):
    path, blocks = pristine
    data = (Path(path) / "data.mdb").read_bytes()
    commands = _commands(tmp_path)
    assert {"log", "rank", "stats", "export"} <= {c[0] for c in commands}
    truth = {name: _run(path, args, out) for name, args, out in commands}
    assert all(code == 0 for code, _, _ in truth.values()), truth
    rng = random.Random(seed)
    trials = size(16, 300)
    caught = exact = 0
    for trial in range(trials):
        first, raw, data_end, end = rng.choice(blocks)
        region = "events" if trial % 2 else "columns"
        lo, hi = (63, data_end) if region == "events" else (data_end, end)
        if hi <= lo:
            lo, hi = 63, data_end
        at = data.find(raw)
        assert at >= 0 and data.find(raw, at + 1) < 0, "the block must be in the file once"
        bit = rng.randrange((hi - lo) * 8)
        flipped = bytearray(data)
        flipped[at + lo + bit // 8] ^= 1 << (bit % 8)
        copy = tmp_path / f"t{trial}.ledger"
        shutil.copytree(path, copy)
        (copy / "data.mdb").write_bytes(bytes(flipped))
        for name, args, out in commands:
            code, body, err = _run(str(copy), args, out)
            if code == 0:
                assert body == truth[name][1], (
                    f"trial {trial}: `ledger {name}` gave a different answer with exit 0 after a "
                    f"flip in the {region} of the block at seq {first}"
                )
                exact += 1
            else:
                assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
                assert f"block of seqs {first}-" in err or "corrupt at seq" in err, err
                caught += 1
        shutil.rmtree(copy)
    print(
        f"R25: {trials} flips x {len(commands)} commands: {caught} errors naming the block, {exact} exact answers"
    )
    assert caught > 0
