"""What the golden compatibility test observes, in the shape of ``golden_expected.json``.

The test (``test_golden.py``) and the hand-run ``regen_golden.py`` share this one
function, so the expectations are written by exactly the code that later checks them;
the test adds independent checks on top (the hash chain recomputed from the wire form,
derived ids, manifest integrity, replication, batch-split independence).

Everything goes through the ``ledger`` command (click's ``CliRunner``, in-process) and
the public codec, never through storage internals: the on-disk layout may change, the
observable bytes may not.

What depends on the installed writers (Parquet: pyarrow; xlsx: xlsxwriter, zlib and
Python's zipfile) is compared by content (the rows read back), and by bytes only when
the installed versions equal the ones the expectations were generated with. Each ledger
has a random id, which only ``manifest.json`` holds: it is masked before hashing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ASSETS = HERE / "assets"
GOLDEN = ASSETS / "golden.jsonl"
EXPECTED = ASSETS / "golden_expected.json"
GOLDEN_NAME = "golden.jsonl"
LEDGER_ID_MASK = "<ledger-id>"
VARIES = "<version-dependent>"
#: Formats whose bytes depend on the writers' versions (compared by content instead).
VERSION_DEPENDENT = (".parquet", ".xlsx")

STUDY_A = "lr-sweep"
STUDY_B = "puce-étude-芯片"

#: label -> (study, extra CLI arguments). The as-of cases: seq 16 is before the
#: correction of base-r1's loss at step 20 (seq 17) and before any run finished; seq 40
#: is mid-way through the chip study's ECOs with one of its runs finished.
EXPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lr-sweep@head": (STUDY_A, ("--format", "all")),
    "chip@head": (STUDY_B, ("--format", "all")),
    "lr-sweep@16": (STUDY_A, ("--format", "json", "--format", "csv", "--as-of", "16")),
    "chip@40": (STUDY_B, ("--format", "csv", "--format", "parquet", "--as-of", "40")),
}

CHAIN_HOWTO = (
    "The canonical encoding, the ids or the hash chain changed: ledgers written before "
    "this change would no longer verify, deduplicate re-sent events or replicate with "
    "`log --json | append`. If that is deliberate, bump the ledger format version and "
    "regenerate the expectations by hand with `python tests/compat/regen_golden.py` "
    "(tests/compat/assets/README.md); otherwise fix the code, not the expectations."
)
EXPORT_HOWTO = (
    "The export bytes changed: the same ledger prefix must give the same files. If that "
    "is deliberate, bump the export format version (projections/export/manifest.py "
    "FORMAT_VERSION) and regenerate the expectations by hand with "
    "`python tests/compat/regen_golden.py` (tests/compat/assets/README.md); otherwise fix "
    "the code, not the expectations."
)


# -- small helpers ------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(content: bytes) -> str:
    """BLAKE2b-128 of an event's canonical bytes: what an event without an id gets as id."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    raise TypeError(f"cannot canonicalise {type(obj).__name__}")


def canonical_json(obj: Any) -> bytes:
    """A stable text for content comparisons (floats by ``repr``, NaN as a token)."""
    return json.dumps(
        obj, sort_keys=True, ensure_ascii=False, allow_nan=True, default=_default
    ).encode()


def cli(path: Path, *args: str, input: bytes | None = None, ok: bool = True) -> Any:
    """``ledger --ledger PATH ARGS...`` in-process; raises with stderr on a failure."""
    from click.testing import CliRunner

    from cli.main import cli as app

    result = CliRunner().invoke(
        app, ["--ledger", str(path), *args], input=input, catch_exceptions=False
    )
    if ok and result.exit_code != 0:
        raise AssertionError(
            f"`ledger {' '.join(args)}` exited {result.exit_code}: {result.stderr.strip()}"
        )
    return result


def golden_lines() -> list[bytes]:
    return GOLDEN.read_bytes().splitlines()


# -- the event log ------------------------------------------------------------------


def event_content(wire: dict[str, Any]) -> bytes:
    """The canonical bytes of one ``log --json`` line's event (what its id and hash
    cover), through the public codec: the wire form without what the ledger assigns."""
    from ledger.codec import encode_canonical, event_from_obj

    client = {k: v for k, v in wire.items() if k not in ("seq", "hash", "id", "ts")}
    return encode_canonical(event_from_obj(client))


def parse_log(log_bytes: bytes) -> list[dict[str, Any]]:
    """``log --json`` lines as dicts (the wire spells non-finite numbers as strings)."""
    return [json.loads(line) for line in log_bytes.splitlines() if line.strip()]


def _content_or_error(wire: dict[str, Any]) -> str:
    from ledger.errors import LedgerError

    try:
        return content_digest(event_content(wire))
    except LedgerError as exc:  # a line the input side no longer reads
        return f"<not readable back as input: {exc}>"


def events_table(wires: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per event: seq, type, id, chain hash and the digest of its canonical bytes."""
    return [
        {
            "seq": w.get("seq"),
            "type": w.get("type"),
            "id": w.get("id"),
            "hash": w.get("hash"),
            "content": _content_or_error(w),
        }
        for w in wires
    ]


def canonical_sha256(wires: list[dict[str, Any]]) -> str:
    """SHA-256 over every event's canonical bytes, each prefixed by its length."""
    from ledger.errors import LedgerError

    digest = hashlib.sha256()
    for w in wires:
        try:
            content = event_content(w)
        except LedgerError as exc:
            content = f"<not readable back as input: {exc}>".encode()
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


# -- exports --------------------------------------------------------------------------


def _plain_type(t: Any) -> str:
    """Arrow type names that newer pyarrow versions may pick for the same column."""
    text = str(t)
    return re.sub(r"\b(large_string|string_view)\b", "string", text).replace(
        "large_binary", "binary"
    )


def parquet_content(path: Path) -> bytes:
    """A Parquet file as read back: schema (names, types, nullability), non-Arrow
    metadata and rows, in canonical JSON. Independent of the writer's exact bytes."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    schema = [[f.name, _plain_type(f.type), f.nullable] for f in table.schema]
    metadata = {
        k.decode(): v.decode()
        for k, v in sorted((table.schema.metadata or {}).items())
        if not k.startswith(b"ARROW:") and k != b"pandas"
    }
    rows = [[row[name] for name in table.column_names] for row in table.to_pylist()]
    return canonical_json({"schema": schema, "metadata": metadata, "rows": rows})


def xlsx_content(path: Path) -> bytes:
    """A workbook's sheet names and cell values (trailing blanks trimmed), read with
    openpyxl: what a reader sees, independent of the zip and XML bytes."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        sheets = []
        for ws in wb.worksheets:
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            for r in rows:
                while r and r[-1] is None:
                    r.pop()
            while rows and not rows[-1]:
                rows.pop()
            sheets.append([ws.title, [[_cell(v) for v in r] for r in rows]])
    finally:
        wb.close()
    return canonical_json(sheets)


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    return v


def normalised_manifest(manifest: dict[str, Any], ledger_id: str) -> dict[str, Any]:
    """The manifest with what legitimately varies masked: this ledger's random id, the
    installed versions (their names kept) and the bytes of version-dependent formats."""
    out = json.loads(json.dumps(manifest))
    if out.get("ledger_id") == ledger_id:
        out["ledger_id"] = LEDGER_ID_MASK
    out["versions"] = sorted(out.get("versions") or {})
    for name, info in out.get("files", {}).items():
        if name.endswith(VERSION_DEPENDENT):
            info["sha256"] = VARIES
            info["bytes"] = VARIES
    return out


def export_folder(path: Path, study: str, args: tuple[str, ...], out: Path) -> Path:
    cli(path, "export", "--study", study, "--out", str(out), *args)
    folders = [p for p in out.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise AssertionError(f"expected one snapshot folder in {out}, found {folders}")
    return folders[0]


def observe_export(folder: Path, ledger_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(what is pinned everywhere, raw version-dependent hashes) of one snapshot."""
    mask = ledger_id.encode()
    files: dict[str, str] = {}
    content: dict[str, str] = {}
    varying: dict[str, str] = {}
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        if p.name == "manifest.json":
            varying[p.name] = sha256(data.replace(mask, LEDGER_ID_MASK.encode()))
        elif p.name.endswith(".parquet"):
            content[p.name] = sha256(parquet_content(p))
            varying[p.name] = sha256(data)
        elif p.name.endswith(".xlsx"):
            content[p.name] = sha256(xlsx_content(p))
            varying[p.name] = sha256(data)
        else:
            files[p.name] = sha256(data.replace(mask, LEDGER_ID_MASK.encode()))
    manifest = json.loads((folder / "manifest.json").read_bytes())
    pinned = {
        "folder": folder.name,
        "files": files,
        "content": content,
        "manifest": normalised_manifest(manifest, ledger_id),
    }
    return pinned, varying


# -- everything -------------------------------------------------------------------------


def observe_log(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Append the golden file to a fresh ledger under ``work`` and read it back.

    Returns ``(observed, extras)``: ``observed`` is the log part of the expectations;
    ``extras`` holds what the test checks further (the ledger path and id, the
    ``log --json`` bytes and lines).
    """
    path = work / "golden.ledger"
    appended = json.loads(cli(path, "append", str(GOLDEN), "--json").stdout)
    appended["redacted"] = [r.replace(str(GOLDEN), GOLDEN_NAME) for r in appended["redacted"]]
    log_bytes = cli(path, "log", "--json").stdout_bytes
    wires = parse_log(log_bytes)
    events = events_table(wires)
    ledger_id = json.loads(cli(path, "status", "--json").stdout)["ledger_id"]
    observed = {
        "golden_jsonl_sha256": sha256(GOLDEN.read_bytes()),
        "append": appended,
        "head": {"seq": appended["head_seq"], "hash": appended["head_hash"]},
        "first_event": {k: events[0][k] for k in ("seq", "type", "id", "hash")},
        "last_event": {k: events[-1][k] for k in ("seq", "type", "id", "hash")},
        "log_json_sha256": sha256(log_bytes),
        "log_json_lines": len(wires),
        "canonical_sha256": canonical_sha256(wires),
        "events": events,
    }
    extras = {"path": path, "ledger_id": ledger_id, "log_bytes": log_bytes, "wires": wires}
    return observed, extras


def observe_exports(path: Path, ledger_id: str, work: Path) -> dict[str, Any]:
    """Every export of ``EXPORTS`` from the ledger at ``path``, into ``work``.

    Returns ``{"exports": pinned part by label, "version_dependent": {"versions",
    "bytes"}, "folders": label -> snapshot folder}``.
    """
    exports: dict[str, Any] = {}
    varying: dict[str, Any] = {}
    folders: dict[str, Path] = {}
    versions: dict[str, str] = {}
    for label, (study, args) in EXPORTS.items():
        folder = export_folder(path, study, args, work / label)
        exports[label], varying[label] = observe_export(folder, ledger_id)
        folders[label] = folder
        versions = json.loads((folder / "manifest.json").read_bytes())["versions"]
    return {
        "exports": exports,
        "version_dependent": {"versions": versions, "bytes": varying},
        "folders": folders,
    }


def observe(work: Path) -> dict[str, Any]:
    """The whole expectations file's content (but its ``_about``/``generated_from``)."""
    observed, extras = observe_log(work)
    out = observe_exports(extras["path"], extras["ledger_id"], work / "exports")
    return {
        **observed,
        "exports": out["exports"],
        "version_dependent": out["version_dependent"],
    }
