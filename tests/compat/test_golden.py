"""Golden compatibility test (docs/storage-format.md): a hand-written JSON Lines log and the
bytes it must keep producing — canonical bytes, ids, per-event hashes, the head hash,
``log --json``, and the export files — whatever the storage layout underneath.

The expectations (``assets/golden_expected.json``) are only ever written by
``regen_golden.py``, run by hand after a deliberate format change; see
``assets/README.md``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest
from compat_golden import (
    CHAIN_HOWTO,
    EXPECTED,
    EXPORT_HOWTO,
    EXPORTS,
    GOLDEN,
    cli,
    content_digest,
    event_content,
    events_table,
    golden_lines,
    normalised_manifest,
    observe_exports,
    observe_log,
    parse_log,
    sha256,
)

LABELS = sorted(EXPORTS)


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(EXPECTED.read_text())


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> tuple[dict, dict]:
    """The golden file appended to a fresh ledger, and its log read back."""
    return observe_log(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def observed(logged) -> dict:
    return logged[0]


@pytest.fixture(scope="module")
def extras(logged) -> dict:
    return logged[1]


@pytest.fixture(scope="module")
def exported(extras, tmp_path_factory) -> dict:
    """The snapshots of ``EXPORTS`` (a separate stage: an export failure leaves the log
    tests standing)."""
    return observe_exports(extras["path"], extras["ledger_id"], tmp_path_factory.mktemp("ex"))


def _first_event_difference(actual: list[dict], wanted: list[dict]) -> str:
    for a, w in zip(actual, wanted):
        if a != w:
            fields = [k for k in w if a.get(k) != w.get(k)]
            return (
                f"first difference at seq {w['seq']} ({w['type']}) in {', '.join(fields)}: "
                f"got {a}, expected {w}"
            )
    return f"{len(actual)} events, expected {len(wanted)}"


# -- the input itself ------------------------------------------------------------------


def test_golden_file_is_the_one_the_expectations_were_made_from(observed, expected):
    assert observed["golden_jsonl_sha256"] == expected["golden_jsonl_sha256"], (
        f"{GOLDEN} was edited after its expectations were generated. It is a fixed input: "
        "add cases in a new golden file (and test), or regenerate deliberately with "
        "`python tests/compat/regen_golden.py`."
    )


# -- 1. append: head, ids, hashes, canonical bytes -----------------------------------------


def test_append_gives_the_expected_head(observed, expected):
    assert observed["head"] == expected["head"], f"head moved. {CHAIN_HOWTO}"
    assert observed["append"] == expected["append"], (
        "`append --json` reports other counts or redactions (appended, in-batch duplicate, "
        f"redacted fields). {CHAIN_HOWTO}"
    )
    assert observed["first_event"] == expected["first_event"], CHAIN_HOWTO
    assert observed["last_event"] == expected["last_event"], CHAIN_HOWTO


def test_every_event_keeps_its_id_hash_and_canonical_bytes(observed, expected):
    got, want = observed["events"], expected["events"]
    assert got == want, f"{_first_event_difference(got, want)}. {CHAIN_HOWTO}"
    assert observed["canonical_sha256"] == expected["canonical_sha256"], (
        f"the canonical msgpack bytes of the events changed. {CHAIN_HOWTO}"
    )


def test_ids_without_a_client_id_are_the_content_digest(extras):
    """docs/architecture.md, Append-time rules: an event with no ``id`` gets one derived from its canonical content
    (after redaction, never including ``ts``)."""
    explicit = set()
    for line in golden_lines():
        obj = json.loads(line)
        if "id" in obj:
            explicit.add(obj["id"])
    seen_explicit = set()
    for w in extras["wires"]:
        if w["id"] in explicit:
            seen_explicit.add(w["id"])
            continue
        assert w["id"] == content_digest(event_content(w)), (
            f"seq {w['seq']}: id {w['id']} is not BLAKE2b-128 of the canonical bytes. {CHAIN_HOWTO}"
        )
    assert seen_explicit == explicit, "an explicit client id was lost or rewritten"


def _micros(ts: str) -> int:
    dt = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_hash_chain_recomputed_from_the_wire_form(extras, expected):
    """The per-event hash, recomputed here from its documented definition (format 1):
    BLAKE2b-256(previous hash || be64(seq) || msgpack [seq as u64, id, ts µs, canonical
    event bytes]), hash(0) = 32 zero bytes. A failure here with the events test passing
    cannot happen; with it failing, this says whether the chain definition or the event
    bytes moved."""
    prev = bytes(32)
    for w in extras["wires"]:
        seq8 = w["seq"].to_bytes(8, "big")
        stored = (
            b"\x94\xcf"
            + seq8
            + msgspec.msgpack.encode(w["id"])
            + msgspec.msgpack.encode(_micros(w["ts"]))
            + event_content(w)
        )
        prev = hashlib.blake2b(prev + seq8 + stored, digest_size=32).digest()
        assert prev.hex() == w["hash"], (
            f"seq {w['seq']} ({w['type']}): the printed hash is not the format-1 chain hash "
            f"of its wire form. {CHAIN_HOWTO}"
        )
    assert prev.hex() == expected["head"]["hash"], CHAIN_HOWTO


def test_batch_boundaries_do_not_change_any_hash(tmp_path, expected):
    """The chain is defined per event, independent of how batches were cut into blocks.
    Here every run of metrics lines is its own batch (the metrics-only fast path, and
    the careful path for the in-batch duplicate) and the other lines batch together."""
    from ledger import Ledger

    path = tmp_path / "split.ledger"
    batches = [
        list(group)
        for _, group in itertools.groupby(
            golden_lines(), key=lambda line: json.loads(line)["type"] == "metrics_recorded"
        )
    ]
    with Ledger(path) as led:
        for i, batch in enumerate(batches):
            led.append_jsonl(batch, source=f"golden.jsonl batch {i + 1}")
        head = led.head
    assert [head.seq, head.hash] == [expected["head"]["seq"], expected["head"]["hash"]], (
        f"appending the golden file in {len(batches)} batches gives another head. {CHAIN_HOWTO}"
    )
    got = events_table(parse_log(cli(path, "log", "--json").stdout_bytes))
    assert got == expected["events"], (
        f"{len(batches)} batches: {_first_event_difference(got, expected['events'])}. {CHAIN_HOWTO}"
    )


# -- 2. log --json ----------------------------------------------------------------------


def test_log_json_bytes(observed, expected, extras):
    assert observed["log_json_lines"] == expected["log_json_lines"]
    assert observed["log_json_sha256"] == expected["log_json_sha256"], (
        "`ledger log --json` prints other bytes (key order, number or timestamp spelling, "
        f"non-finite spelling, escaping). {CHAIN_HOWTO}"
    )
    since = cli(extras["path"], "log", "--json", "--since", "34").stdout_bytes
    assert since == b"".join(extras["log_bytes"].splitlines(keepends=True)[34:]), (
        "`log --json --since 34` must print exactly the events after seq 34"
    )


# -- 3. re-append is a no-op ------------------------------------------------------------------


def test_reappending_the_file_appends_nothing(extras, expected):
    out = json.loads(cli(extras["path"], "append", str(GOLDEN), "--json").stdout)
    assert (out["appended"], out["duplicates"]) == (0, len(golden_lines())), (
        f"re-appending the golden file must be all duplicates. {CHAIN_HOWTO}"
    )
    assert [out["head_seq"], out["head_hash"]] == [
        expected["head"]["seq"],
        expected["head"]["hash"],
    ], CHAIN_HOWTO


# -- 4, 5. exports (at the head and as of a mid seq) -------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_export_bytes_of_our_own_writers(exported, expected, label):
    got, want = exported["exports"][label], expected["exports"][label]
    assert got["folder"] == want["folder"], f"snapshot folder name changed. {EXPORT_HOWTO}"
    assert sorted(got["files"]) == sorted(want["files"]), EXPORT_HOWTO
    changed = sorted(n for n in want["files"] if got["files"][n] != want["files"][n])
    assert not changed, f"{label}: {', '.join(changed)} changed (sha256). {EXPORT_HOWTO}"


@pytest.mark.parametrize("label", LABELS)
def test_export_content_of_version_dependent_formats(exported, expected, label):
    """Parquet and xlsx bytes depend on pyarrow/xlsxwriter versions: their content
    (schema and rows; sheets and cells) is pinned instead."""
    got, want = exported["exports"][label]["content"], expected["exports"][label]["content"]
    assert sorted(got) == sorted(want), EXPORT_HOWTO
    changed = sorted(n for n in want if got[n] != want[n])
    assert not changed, (
        f"{label}: the content read back from {', '.join(changed)} changed (schema, rows or "
        f"cells). If only a dependency upgrade did this, check the new content and "
        f"regenerate; otherwise: {EXPORT_HOWTO}"
    )


@pytest.mark.parametrize("label", LABELS)
def test_export_manifest(exported, expected, extras, label):
    got = exported["exports"][label]["manifest"]
    want = expected["exports"][label]["manifest"]
    assert got == want, f"{label}: manifest.json content changed. {EXPORT_HOWTO}"
    folder: Path = exported["folders"][label]
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["ledger_id"] == extras["ledger_id"]
    for name, info in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert (sha256(data), len(data)) == (info["sha256"], info["bytes"]), (
            f"{label}: manifest.json lists another sha256/size for {name} than the file has"
        )
    assert normalised_manifest(manifest, extras["ledger_id"]) == got


@pytest.mark.parametrize("label", LABELS)
def test_version_dependent_bytes_when_versions_match(exported, expected, label):
    pinned = expected["version_dependent"]
    installed = exported["version_dependent"]["versions"]
    if installed != pinned["versions"]:
        pytest.skip(
            f"installed writers {installed} differ from {pinned['versions']}; "
            "Parquet/xlsx/manifest bytes are compared by content only"
        )
    got = exported["version_dependent"]["bytes"][label]
    changed = sorted(n for n, h in pinned["bytes"][label].items() if got.get(n) != h)
    assert not changed, (
        f"{label}: {', '.join(changed)} bytes changed with the same writer versions. {EXPORT_HOWTO}"
    )


# -- 6. replication ---------------------------------------------------------------------------


def test_replica_through_log_json_has_the_same_chain(tmp_path, extras, expected):
    replica = tmp_path / "replica.ledger"
    out = json.loads(cli(replica, "append", "-", "--json", input=extras["log_bytes"]).stdout)
    assert [out["head_seq"], out["head_hash"]] == [
        expected["head"]["seq"],
        expected["head"]["hash"],
    ], f"`log --json | append` gives another head. {CHAIN_HOWTO}"
    assert cli(replica, "log", "--json").stdout_bytes == extras["log_bytes"], (
        f"the replica prints another log. {CHAIN_HOWTO}"
    )


# -- 7. verify --------------------------------------------------------------------------------


def test_verify_json_is_ok(extras, expected):
    result = cli(extras["path"], "verify", "--json", ok=False)
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] is True, f"verify failed: {report}"
    assert (report["events"], report["head_seq"], report["head_hash"]) == (
        expected["head"]["seq"],
        expected["head"]["seq"],
        expected["head"]["hash"],
    ), CHAIN_HOWTO
