"""R9 rollback and rewrite: a hash chain cannot see either; a head kept outside the
ledger (anchor, export manifest, backup marker) can, through ``verify --against``."""

from __future__ import annotations

import json
import os

import lmdb
import msgspec
import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger
from ledger.anchor import AnchorError, check_against, load_reference, write_anchor
from ledger.backup import backup, restore
from ledger.blocks import BlockView, chain_hash, encode_block
from ledger.integrity import verify_isolated


def _cases(ledger: Ledger, names: list[str]) -> None:
    ledger.append([{"type": "case_created", "study": "s", "case": n} for n in names])


def _verify(path: str, against: str | None = None) -> tuple[int, dict, str]:
    args = ["--ledger", path, "verify", "--json"] + (["--against", against] if against else [])
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.fixture
def history(tmp_path):
    """A ledger with a backup and an anchor at seq 4, and an anchor at its head seq 8."""
    live = str(tmp_path / "live.ledger")
    with Ledger(live) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        _cases(ledger, ["a", "b", "c"])
        early = str(tmp_path / "early.json")
        write_anchor(ledger, early)
        backup(live, tmp_path / "backup-early")
        _cases(ledger, ["d", "e", "f", "g"])
        late = str(tmp_path / "late.json")
        write_anchor(ledger, late)
    return tmp_path, live, early, late


def test_rollback_detected_after_restoring_an_older_backup(history):
    tmp, live, early, late = history
    restored = str(tmp / "restored.ledger")
    restore(tmp / "backup-early", restored)
    code, report, _ = _verify(restored)
    assert code == 0 and report["head_seq"] == 4, "the old copy is self-consistent"
    code, report, err = _verify(restored, late)
    assert code == 1 and report["ok"] is False
    assert report["error"].startswith("rollback detected: anchor ")
    assert "records head seq 8" in report["error"] and "ends at seq 4" in report["error"]
    assert err.startswith("error: rollback detected")
    assert _verify(restored, early)[0] == 0
    assert _verify(live, early)[0] == 0 and _verify(live, late)[0] == 0


def test_export_manifest_and_backup_marker_serve_as_references(history):
    tmp, live, early, late = history
    with Ledger(live, create=False, readonly=True) as ledger:
        manifest = {
            "ledger_id": ledger.ledger_id,
            "study": "s",
            "as_of": 6,
            "head_hash": ledger.hash_at(6),
            "format_version": 1,
            "files": {},
        }
    path = str(tmp / "manifest.json")
    with open(path, "w") as fh:
        json.dump(manifest, fh)
    assert load_reference(path).kind == "export manifest"
    assert _verify(live, path)[0] == 0
    restored = str(tmp / "restored.ledger")
    restore(tmp / "backup-early", restored)
    code, report, _ = _verify(restored, path)
    assert code == 1 and report["error"].startswith("rollback detected: export manifest")
    marker = str(tmp / "backup-early" / "BACKUP.json")
    assert load_reference(marker).kind == "backup marker"
    assert _verify(live, marker)[0] == 0


def _rewrite_event(path: str, seq: int, params: dict) -> None:
    """What an attacker with write access does: change one event, recompute every hash
    after it, store the new blocks and the new head. The chain stays consistent."""
    env = lmdb.open(path, max_dbs=16, subdir=True)
    try:
        events, meta = env.open_db(b"events"), env.open_db(b"meta")
        encode = msgspec.msgpack.Encoder(order="deterministic").encode
        decode = msgspec.msgpack.Decoder(type=list)
        with env.begin(write=True) as txn:
            prev = bytes(32)
            for key, value in list(txn.cursor(events)):
                block = BlockView(int.from_bytes(key, "big"), value)
                items = [bytes(block.event_bytes(i)) for i in range(block.count)]
                for i, raw in enumerate(items):
                    if block.first_seq + i == seq:
                        envelope = decode.decode(raw)  # [seq, id, ts, event]
                        envelope[3]["params"] = params
                        items[i] = encode(envelope)
                hashes = []
                for i, raw in enumerate(items):
                    prev = chain_hash(prev, block.first_seq + i, raw)
                    hashes.append(prev)
                assert txn.put(
                    key, encode_block(items, hashes, first_seq=block.first_seq), db=events
                )
            assert txn.put(b"head_hash", prev, db=meta)
    finally:
        env.close()


def test_rewrite_detected_as_head_mismatch(history):
    tmp, live, early, late = history
    _rewrite_event(live, 3, {"forged": True})
    with Ledger(live, create=False, readonly=True) as ledger:
        assert list(ledger.read())[2].event.params == {"forged": True}
    assert verify_isolated(live).ok, "the recomputed chain is self-consistent"
    code, report, err = _verify(live, late)
    assert code == 1
    assert report["error"].startswith("head mismatch with anchor ")
    assert "at seq 8" in report["error"] and "the log was rewritten" in report["error"]
    code, report, _ = _verify(live, early)
    assert code == 1 and "at seq 4" in report["error"]


def test_anchor_errors_name_the_file_and_key(tmp_path, history):
    _, live, _, _ = history
    bad = tmp_path / "bad.json"
    for content, text in [
        ("not json", "is not JSON"),
        ("[1]", "expected a JSON object"),
        ('{"x": 1}', "is neither an anchor"),
        ('{"head_seq": -1, "head_hash": "00"}', "`head_seq` must be a seq"),
        ('{"as_of": 1, "head_hash": "zz"}', "`head_hash` must be 64 lowercase hex digits"),
    ]:
        bad.write_text(content)
        with pytest.raises(AnchorError, match=text):
            load_reference(bad)
        code = CliRunner().invoke(cli, ["--ledger", live, "verify", "--against", str(bad)])
        assert code.exit_code == 1 and text in code.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"ledger_id": "x" * 32, "head_seq": 0, "head_hash": "0" * 64}))
    with Ledger(live, create=False, readonly=True) as ledger:
        assert "belongs to ledger xxxx" in check_against(ledger, load_reference(other))


def test_anchor_command_prints_and_writes(history, tmp_path):
    _, live, _, late = history
    result = CliRunner().invoke(cli, ["--ledger", live, "anchor"])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads(open(late).read())
    assert sorted(printed) == ["format", "head_hash", "head_seq", "ledger_id"]
    out = str(tmp_path / "a.json")
    assert CliRunner().invoke(cli, ["--ledger", live, "anchor", "--out", out]).exit_code == 0
    assert json.loads(open(out).read()) == printed
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
