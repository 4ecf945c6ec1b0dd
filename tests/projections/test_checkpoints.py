from __future__ import annotations

import warnings
import zlib

import pytest
from proj_streams import Stream, fold

from ledger import Ledger
from ledger.errors import StorageError
from projections.base import AsOfError, ProjectionError, build, build_many
from projections.builtins import builtin_projections, write_checkpoints
from projections.checkpoints import (
    TABLE,
    CheckpointWarning,
    check_checkpoints,
    header_key,
    list_checkpoints,
    payload_key,
    prune_checkpoints,
    restore_newest,
)
from projections.dag import DagProjection
from projections.metrics import MetricsProjection
from projections.study import load_study


def stream(study: str = "s", runs: int = 6, value: float = 0.0) -> list[dict]:
    s = Stream(study).created([("loss", "min")])
    s.case("base")
    for i in range(runs):
        s.eco(f"c{i}", "base", f"eco{i}")
        s.start(f"c{i}", f"r{i}")
        for step in range(3):
            s.log(f"r{i}", {"loss": value + i + step / 10, "acc": 0.5}, step=step)
        s.log(f"r{i}", {"loss": value + i})
        s.finish(f"r{i}")
    return s.events  # 2 + 7 * runs events


def spy_reads(ledger: Ledger) -> list[int]:
    """Record the ``since`` of every read the build makes."""
    starts: list[int] = []
    real = ledger.read_frames

    def read_frames(since=0, until=None, **kw):
        starts.append(since)
        return real(since, until, **kw)

    ledger.read_frames = read_frames  # type: ignore[method-assign]
    return starts


def scratch(ledger: Ledger, as_of: int | None = None) -> list[bytes]:
    return [fold(ledger, p, as_of).snapshot() for p in builtin_projections()]


def built(ledger: Ledger, as_of: int | None = None) -> list[bytes]:
    return [p.snapshot() for p in build_many(ledger, builtin_projections(), as_of)]


def warned(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CheckpointWarning)]


def test_build_restores_the_newest_checkpoint_at_or_before_as_of(ledger) -> None:
    ledger.append(stream()[:20])
    write_checkpoints(ledger)  # at 20
    ledger.append(stream()[20:35])
    write_checkpoints(ledger)  # at 35
    ledger.append(stream()[35:])
    assert [h.seq for h in list_checkpoints(ledger, "metrics")] == [20, 35]
    want = [scratch(ledger, 30), scratch(ledger), scratch(ledger, 10)]
    starts = spy_reads(ledger)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid checkpoint warns about nothing
        got = [built(ledger, 30), built(ledger), built(ledger, 10)]
    assert got == want
    assert starts == [20, 35, 0]


def test_a_projection_continues_from_its_own_position(ledger) -> None:
    ledger.append(stream())
    proj = build(ledger, MetricsProjection(), 20, checkpoints=False)
    starts = spy_reads(ledger)
    build(ledger, proj)
    assert starts == [20]
    assert proj.snapshot() == fold(ledger, MetricsProjection()).snapshot()
    with pytest.raises(AsOfError) as err:
        build(ledger, proj, 10)
    assert str(err.value) == (
        f"projection 'metrics' is already at seq {ledger.head.seq}, past the requested seq "
        "10; build a fresh projection to go back in time"
    )


def test_as_of_outside_the_log(ledger) -> None:
    ledger.append(stream())
    with pytest.raises(AsOfError) as err:
        build(ledger, DagProjection(), 999)
    assert (
        str(err.value)
        == "as-of seq 999 is outside the log (its head is seq 44); pick a seq from 0 to 44"
    )


def test_another_version_is_ignored_with_a_warning(ledger) -> None:
    ledger.append(stream())
    write_checkpoints(ledger)

    class DagV2(DagProjection):
        version = 2

    with pytest.warns(CheckpointWarning) as record:
        proj = build(ledger, DagV2())
    assert warned(record) == [
        "checkpoint dag@44 ignored: written by version 1 of projection 'dag', this is "
        "version 2; rebuilding from an earlier position (run `ledger checkpoint` to write a "
        "fresh one)"
    ]
    assert proj.snapshot() == fold(ledger, DagProjection()).snapshot()


def copy_checkpoints(src: Ledger, dst: Ledger) -> None:
    for key, value in src.aux_items(TABLE):
        dst.aux_put(TABLE, key, value)


def test_another_ledgers_checkpoint_is_not_trusted(tmp_path) -> None:
    with Ledger(tmp_path / "a") as a, Ledger(tmp_path / "b") as b:
        a.append(stream(value=0.0))
        b.append(stream(value=100.0))  # same shape, other values: another log
        write_checkpoints(a)
        copy_checkpoints(a, b)
        with pytest.warns(CheckpointWarning) as record:
            got = built(b)
        assert got == scratch(b)
        messages = warned(record)
        assert len(messages) == 4
        assert messages[0].startswith(
            f"checkpoint dag@44 ignored: the log's hash at seq 44 ({b.hash_at(44)[:16]}...) is "
            f"not the one it was written at ({a.hash_at(44)[:16]}...): the log was rewritten "
            "or this checkpoint is another ledger's"
        )


def test_a_checkpoint_past_the_head_is_not_trusted(tmp_path) -> None:
    with Ledger(tmp_path / "a") as a, Ledger(tmp_path / "b") as b:
        a.append(stream())
        b.append(stream()[:30])  # a shorter copy: as if the log were rolled back
        write_checkpoints(a)
        copy_checkpoints(a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert built(b) == scratch(b)  # past every as-of: never even considered
        problems = {p for _, _, _, p in check_checkpoints(b)}
        assert problems == {
            "it is past the head of the log (seq 30): the log was rolled back or replaced"
        }
        b.append(stream("t"))  # the log grows another way
        with pytest.warns(CheckpointWarning) as record:
            assert built(b) == scratch(b)
        assert warned(record)[0].startswith("checkpoint dag@44 ignored: the log's hash at seq 44")


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("flip", "its payload does not match its digest (corrupt)"),
        ("truncate", "its payload does not match its digest (corrupt)"),
        ("drop", "its payload is missing"),
        ("header", "its header is corrupt"),
        ("algorithm", "its digest (sha1) is not one this version checks"),
    ],
)
def test_a_corrupt_checkpoint_is_ignored(ledger, damage: str, why: str) -> None:
    ledger.append(stream())
    write_checkpoints(ledger)
    key = payload_key("metrics", 44)
    payload = ledger.aux_get(TABLE, key)
    if damage == "flip":
        i = len(payload) // 2
        ledger.aux_put(TABLE, key, payload[:i] + bytes([payload[i] ^ 1]) + payload[i + 1 :])
    elif damage == "truncate":
        ledger.aux_put(TABLE, key, payload[:-3])
    elif damage == "drop":
        ledger.aux_delete(TABLE, key)
    elif damage == "algorithm":
        import msgspec

        from projections.checkpoints import CheckpointHeader

        raw = ledger.aux_get(TABLE, header_key("metrics", 44))
        header = msgspec.msgpack.decode(raw, type=CheckpointHeader)
        header = msgspec.structs.replace(header, digest="sha1:" + "0" * 40)
        ledger.aux_put(TABLE, header_key("metrics", 44), msgspec.msgpack.encode(header))
    else:
        ledger.aux_put(TABLE, header_key("metrics", 44), b"\xc1garbage")
    with pytest.warns(CheckpointWarning) as record:
        assert built(ledger) == scratch(ledger)
    assert len(warned(record)) == 1
    assert warned(record)[0].startswith(f"checkpoint metrics@44 ignored: {why}")
    problems = {(n, s): p for _, n, s, p in check_checkpoints(ledger)}
    assert problems[("metrics", 44)].startswith(why)
    assert problems[("dag", 44)] is None


def test_a_payload_that_does_not_restore_is_ignored(ledger) -> None:
    """Digest fine, content wrong (e.g. written by a buggy version): still not trusted."""
    import msgspec

    from projections.checkpoints import CheckpointHeader

    ledger.append(stream())
    write_checkpoints(ledger)
    bad = msgspec.msgpack.encode({"seq": 44, "runs": "nonsense"})
    header = msgspec.msgpack.decode(
        ledger.aux_get(TABLE, header_key("metrics", 44)), type=CheckpointHeader
    )
    header = msgspec.structs.replace(header, digest=f"crc32:{zlib.crc32(bad):08x}", size=len(bad))
    ledger.aux_put(TABLE, payload_key("metrics", 44), bad)
    ledger.aux_put(TABLE, header_key("metrics", 44), msgspec.msgpack.encode(header))
    with pytest.warns(CheckpointWarning) as record:
        assert built(ledger) == scratch(ledger)
    assert warned(record)[0].startswith(
        "checkpoint metrics@44 ignored: its payload does not restore ("
    )


def test_a_bad_newer_checkpoint_falls_back_to_an_older_one(ledger) -> None:
    ledger.append(stream()[:20])
    write_checkpoints(ledger)
    ledger.append(stream()[20:])
    write_checkpoints(ledger)
    ledger.aux_delete(TABLE, payload_key("runs", 44))
    proj = builtin_projections()[1]
    with pytest.warns(
        CheckpointWarning, match=r"checkpoint runs@44 ignored: its payload is missing"
    ):
        assert restore_newest(ledger, proj, 44) == 20
    assert proj.seq == 20


def test_read_only_ledgers_are_read_but_never_written(ledger_path) -> None:
    with Ledger(ledger_path) as led:
        led.append(stream())
        write_checkpoints(led, as_of=30)
        before = led.aux_items(TABLE)
    with Ledger(ledger_path, create=False, readonly=True) as ro:
        view = load_study(ro, "s")
        assert [r.case for r in view.rank().rows][:2] == ["c0", "c1"]
        assert ro.aux_items(TABLE) == before
        with pytest.raises(StorageError):
            write_checkpoints(ro)


def test_prune_keeps_the_newest(ledger) -> None:
    events = stream()
    for end in (10, 20, 30, 44):
        ledger.append(events[:end])
        write_checkpoints(ledger)
    assert [h.seq for h in list_checkpoints(ledger, "dag")] == [10, 20, 30, 44]
    assert prune_checkpoints(ledger, 2) == 8  # 2 of each of the 4 projections
    assert [h.seq for h in list_checkpoints(ledger, "dag")] == [30, 44]
    assert not any(
        k.startswith(b"#payload/dag/") and k.endswith((10).to_bytes(8, "big"))
        for k, _ in ledger.aux_items(TABLE)
    )
    write_checkpoints(ledger, as_of=5, keep=1)
    assert [h.seq for h in list_checkpoints(ledger, "metrics")] == [44]


def test_nothing_to_checkpoint_in_an_empty_ledger(ledger) -> None:
    with pytest.raises(ProjectionError) as err:
        write_checkpoints(ledger)
    assert str(err.value) == f"{ledger.path} holds no events yet: there is nothing to checkpoint"
