"""The storage contract, written once and run against every backend (LMDB, PostgreSQL,
in-memory): appends, dedupe, refusal atomicity, rules, reads by study, the chain and
verify, checkpoints, the aux tables, concurrency. What a test here asserts holds for
every backend, or the seam leaks."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import HeadMoved, IdempotencyConflict, Ledger, LedgerError, LedgerNotFound
from ledger.errors import RuleViolation, StorageError
from ledger.prepare import BLOCK_MAX_EVENTS
from tests.ledger.study_events import basic_study

GENESIS = "00" * 32


def metrics(study: str, run: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "type": "metrics_recorded",
            "study": study,
            "run": run,
            "step": i,
            "values": {"loss": 1 / (i + 1)},
        }
        for i in range(start, start + n)
    ]


def wire(env) -> tuple:
    """What must survive storage: seq, id, ts and the content."""
    import msgspec

    return (env.seq, env.id, env.ts, msgspec.msgpack.encode(env.event))


def test_a_new_ledger_is_empty(location):
    with Ledger(location) as led:
        assert tuple(led.head) == (0, GENESIS)
        assert led.studies() == [] and list(led.read()) == []
        report = led.verify()
        assert report.ok and report.events == 0 and report.head_seq == 0
        assert led.hash_at(0) == GENESIS


def test_append_reads_back_what_was_appended(location):
    events = basic_study()
    with Ledger(location) as led:
        result = led.append(events)
        assert (result.appended, result.duplicates, result.head_seq, result.first_seq) == (
            7,
            0,
            7,
            1,
        )
        got = list(led.read(with_hashes=True))
        assert [e.seq for e in got] == list(range(1, 8))
        assert [e.event.TYPE for e in got] == [e["type"] for e in events]
        assert got[-1].hash.hex() == result.head_hash == led.head.hash
        assert [e.hash.hex() for e in got] == [led.hash_at(s) for s in range(1, 8)]
        assert led.studies() == ["s"] and led.has_study("s") and not led.has_study("t")


def test_the_same_content_again_is_a_duplicate(location):
    with Ledger(location) as led:
        first = led.append(basic_study())
        again = led.append(basic_study())
        assert (again.appended, again.duplicates) == (0, 7)
        assert again.head_hash == first.head_hash and led.head.seq == 7
        mixed = led.append(basic_study() + metrics("s", "r1", 3, start=10)[:0])
        assert mixed.appended == 0


def test_same_id_other_content_is_refused_and_nothing_is_appended(location):
    with Ledger(location) as led:
        led.append(basic_study()[:4])
        before = led.head
        clash = {
            "type": "metrics_recorded",
            "study": "s",
            "run": "r1",
            "values": {"loss": 1},
            "id": "x",
        }
        led.append([clash])
        batch = [
            {"type": "metrics_recorded", "study": "s", "run": "r1", "values": {"loss": 2}},
            {**clash, "values": {"loss": 3}},
        ]
        with pytest.raises(IdempotencyConflict, match="id 'x' is already in the log"):
            led.append(batch)
        assert led.head.seq == before.seq + 1
        assert led.append(batch[:1]).appended == 1  # the refused batch took no id


def test_a_refused_batch_leaves_nothing_and_names_the_event(location):
    with Ledger(location) as led:
        led.append(basic_study()[:4])
        before = led.head
        batch = metrics("s", "r1", 5) + [
            {"type": "metrics_recorded", "study": "s", "run": "nope", "values": {"x": 1}}
        ]
        with pytest.raises(
            RuleViolation, match=r"event 6 of the batch: metrics_recorded: run 'nope'"
        ):
            led.append(batch)
        assert led.head == before and len(list(led.read())) == 4
        assert led.append(batch[:5]).appended == 5
        assert led.verify().ok


def test_rules_hold_across_batches(location):
    with Ledger(location) as led:
        led.append(basic_study())
        with pytest.raises(RuleViolation, match="already finished"):
            led.append(metrics("s", "r1", 1, start=50))
        with pytest.raises(RuleViolation, match="does not exist"):
            led.append([{"type": "case_created", "study": "other", "case": "c"}])
        with pytest.raises(RuleViolation, match="already exists"):
            led.append(
                [{"type": "case_created", "study": "s", "case": "base", "params": {"lr": 9}}]
            )
        assert led.head.seq == 7


def test_expected_head(location):
    with Ledger(location) as led:
        led.append(basic_study()[:2], expected_head=0)
        with pytest.raises(HeadMoved):
            led.append(basic_study()[2:3], expected_head=0)
        assert led.append(basic_study()[2:3], expected_head=2).head_seq == 3


def test_reads_by_study_and_bounds(location):
    with Ledger(location) as led:
        for study in ("a", "b"):
            led.append(basic_study(study)[:4])
        for i in range(3):
            led.append(metrics("a", "r1", 4, start=4 * i) + metrics("b", "r1", 2, start=2 * i))
        all_events = list(led.read())
        for study in ("a", "b"):
            mine = [wire(e) for e in all_events if e.event.study == study]
            assert [wire(e) for e in led.read(study=study)] == mine
            assert [wire(e) for e in led.read(5, 20, study=study)] == [
                w for w in mine if 5 < w[0] <= 20
            ]
            frames = list(led.read_frames(study=study))
            assert sum(f.metrics.count for f in frames) == sum(
                1
                for e in all_events
                if e.event.study == study and e.event.TYPE == "metrics_recorded"
            )
        chunks = list(led.read_batches(chunk_blocks=1, chunk_events=1))
        assert [wire(e) for c in chunks for e in c] == [wire(e) for e in all_events]
        assert [e.seq for e in led.read(3, 9)] == list(range(4, 10))
        assert [e.seq for e in led.read(types=["run_started"])] == [4, 8]


def test_a_batch_larger_than_a_block(location):
    n = BLOCK_MAX_EVENTS + 500
    with Ledger(location) as led:
        led.append(basic_study()[:4])
        result = led.append(metrics("s", "r1", n))
        assert result.appended == n
        assert led.verify().ok
        seqs = [
            e.seq for e in led.read(BLOCK_MAX_EVENTS - 2, BLOCK_MAX_EVENTS + 6, with_hashes=True)
        ]
        assert seqs == list(range(BLOCK_MAX_EVENTS - 1, BLOCK_MAX_EVENTS + 7))
        assert (
            led.hash_at(BLOCK_MAX_EVENTS + 4)
            == next(
                iter(led.read(BLOCK_MAX_EVENTS + 3, BLOCK_MAX_EVENTS + 4, with_hashes=True))
            ).hash.hex()
        )
        frames = list(led.read_frames(chunk_events=1000))
        assert sum(f.metrics.count for f in frames) == n


def test_a_duplicate_inside_a_batch_is_skipped(location):
    with Ledger(location) as led:
        events = basic_study()
        result = led.append(events + events[4:6])
        assert (result.appended, result.duplicates) == (7, 2)
        assert led.verify().ok


def test_aux_tables(location):
    with Ledger(location) as led:
        led.aux_put("leases", b"a/1", b"one")
        led.aux_put("leases", b"a/2", b"two")
        led.aux_put("leases", b"b/1", b"three")
        led.aux_put("cursors", b"a/1", b"other table")
        assert led.aux_get("leases", b"a/1") == b"one"
        assert led.aux_items("leases", b"a/") == [(b"a/1", b"one"), (b"a/2", b"two")]
        led.aux_put("leases", b"a/1", b"again")
        led.aux_delete("leases", b"a/2")
        led.aux_delete("leases", b"missing")
        assert led.aux_items("leases") == [(b"a/1", b"again"), (b"b/1", b"three")]
        assert led.aux_items("cursors") == [(b"a/1", b"other table")]
        with pytest.raises(LedgerError, match="unknown table 'nope'"):
            led.aux_put("nope", b"k", b"v")
        assert led.head.seq == 0  # outside the log


def test_aux_rides_in_the_append_transaction(location):
    with Ledger(location) as led:
        led.append(basic_study()[:4], aux=[("cursors", b"src", b"4")])
        assert led.aux_get("cursors", b"src") == b"4"
        with pytest.raises(RuleViolation):
            led.append(
                [{"type": "metrics_recorded", "study": "s", "run": "zz", "values": {"x": 1}}],
                aux=[("cursors", b"src", b"5")],
            )
        assert led.aux_get("cursors", b"src") == b"4"  # rolled back with the batch
        led.append([], aux=[("cursors", b"src", None)])
        assert led.aux_get("cursors", b"src") is None


def test_checkpoints_restore_what_a_full_replay_gives(location):
    from projections.base import build_many
    from projections.builtins import builtin_projections, write_checkpoints

    with Ledger(location) as led:
        led.append(basic_study())
        led.append(basic_study("t"))
        write_checkpoints(led)
        led.append(metrics("t", "r9", 0))
        full = build_many(led, builtin_projections(), checkpoints=False)
        from_checkpoint = build_many(led, builtin_projections())
        assert [p.snapshot() for p in full] == [p.snapshot() for p in from_checkpoint]


def test_reopen_and_read_only(location, backend):
    with Ledger(location) as led:
        led.append(basic_study())
        ledger_id, head = led.ledger_id, led.head
    with Ledger(location, create=False, readonly=True) as ro:
        assert ro.ledger_id == ledger_id and ro.head == head
        with pytest.raises(StorageError, match="read-only"):
            ro.append(metrics("s", "r1", 1))
        with pytest.raises(StorageError, match="read-only"):
            ro.aux_put("leases", b"k", b"v")


def test_a_new_ledger_can_be_given_its_id(location):
    with Ledger(location, ledger_id="ab" * 16) as led:
        assert led.ledger_id == "ab" * 16
    with Ledger(location, ledger_id="cd" * 16) as led:
        assert led.ledger_id == "ab" * 16  # an existing ledger keeps its own


def test_a_missing_ledger_is_not_created_when_create_is_false(location):
    with pytest.raises(LedgerNotFound):
        Ledger(location, create=False)


def _writer(location: str, writer: int, batches: int, out) -> None:
    with Ledger(location) as led:
        for b in range(batches):
            led.append(
                [
                    {
                        "type": "metrics_recorded",
                        "study": "s",
                        "run": "r1",
                        "values": {"w": writer, "b": b, "i": i},
                    }
                    for i in range(20)
                ]
            )
    out.put(writer)


def test_writers_in_several_processes(location, backend):
    if backend == "memory":
        pytest.skip("an in-memory ledger lives in one process")
    with Ledger(location) as led:
        led.append(basic_study()[:4])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(location, w, 10, out)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Ledger(location) as led:
        assert led.head.seq == 4 + 4 * 10 * 20
        assert led.verify().ok
        ids = [e.id for e in led.read()]
        assert len(set(ids)) == len(ids)


def test_every_backend_gives_the_same_bytes(tmp_path, pg_url):
    """The same events (with their ts) in the same batches give the same seqs, head
    hash, ``log --json`` and export bytes on every backend (the manifest's ``ledger_id``
    aside: every ledger has its own)."""
    from tests.projections.export.seeded_study import seeded_events

    events = seeded_events(n_cases=6, attempts=2, steps=5)
    batches = [events[i : i + 37] for i in range(0, len(events), 37)]
    locations = {
        "lmdb": str(tmp_path / "d.ledger"),
        "memory": f"memory:same-bytes-{tmp_path.name}",
        "postgresql": pg_url,
    }
    heads, logs, exports = {}, {}, {}
    for name, loc in locations.items():
        with Ledger(loc) as led:
            for batch in batches:
                led.append(batch)
            heads[name] = led.head
        logs[name] = _cli(loc, "log", "--json")
        out = tmp_path / f"export-{name}"
        _cli(loc, "export", "--study", events[0]["study"], "--format", "all", "--out", str(out))
        exports[name] = {
            str(p.relative_to(out)): _without_ledger_id(p)
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }
    assert heads["lmdb"] == heads["postgresql"] == heads["memory"]
    assert logs["lmdb"] == logs["postgresql"]
    assert exports["lmdb"] == exports["postgresql"] and exports["lmdb"]


def _without_ledger_id(path: Path) -> bytes:
    """A file's bytes; a manifest's without the one line that names its ledger (each
    ledger has its own random id, whatever the backend)."""
    data = path.read_bytes()
    if path.name != "manifest.json":
        return data
    lines = [line for line in data.split(b"\n") if not line.strip().startswith(b'"ledger_id"')]
    assert len(lines) == data.count(b"\n")  # exactly one line dropped
    return b"\n".join(lines)


def _cli(location: str, *args: str) -> bytes:
    if location.startswith("memory:"):
        from click.testing import CliRunner

        from cli.main import cli

        result = CliRunner().invoke(cli, ["--ledger", location, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout_bytes
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", location, *args],
        capture_output=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout
