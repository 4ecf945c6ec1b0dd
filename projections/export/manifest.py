"""``manifest.json``: what a snapshot holds, and the ledger head it was taken at.

The manifest is the part of an export a user keeps: its file hashes let anyone check
the folder later, and its ``(as_of, head_hash)`` records the ledger head outside the
ledger, which is what catches a rollback or a rewritten log (docs/reliability.md, pitfall 11).
It is written with the same canonical JSON as everything else, so equal snapshots have
equal manifests, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projections.export.safety import ExportError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "FileInfo",
    "build_manifest",
    "file_info",
    "package_versions",
    "read_manifest",
    "verify_manifest",
]

#: Bumped when the layout or the meaning of an exported file changes. 2: the metrics
#: table's ``ts``, ``study.json``'s step series and final values' times, the workbook's
#: metrics sheet and date cells, Parquet's nullable-integer hint for pandas, and the
#: manifest's ``csv_raw``.
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """One exported file as the manifest lists it (``rows`` is None for documents)."""

    sha256: str
    bytes: int
    rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes, "rows": self.rows}


def file_info(path: str | os.PathLike[str], rows: int | None = None) -> FileInfo:
    """Hash a written file in chunks (memory does not grow with the file)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileInfo(sha256=digest.hexdigest(), bytes=size, rows=rows)


def _distribution_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def package_versions() -> dict[str, str]:
    """Versions of everything that decides an export's bytes.

    This package, pyarrow (CSV and Parquet), xlsxwriter, msgspec (JSON), zlib (the
    xlsx deflate stream) and Python's minor version (its ``zipfile`` packs the xlsx).
    Two exports of the same ledger prefix are byte-identical when these agree.
    """
    import platform
    import zlib

    import msgspec
    import pyarrow
    import xlsxwriter

    major, minor, _ = platform.python_version_tuple()
    return {
        "msgspec": msgspec.__version__,
        "pyarrow": pyarrow.__version__,
        "python": f"{major}.{minor}",
        "results-ledger": _distribution_version("results-ledger"),
        "xlsxwriter": xlsxwriter.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


def build_manifest(
    *,
    ledger_id: str,
    study: str,
    as_of: int,
    head_hash: str,
    files: Mapping[str, FileInfo],
    redacted: Any,
    versions: Mapping[str, str] | None = None,
    format_version: int = FORMAT_VERSION,
) -> dict[str, Any]:
    """The manifest (docs/architecture.md, Exports) as a plain dict (write it with ``write_json``).

    ``files`` must not list the manifest itself. ``redacted`` is what
    :func:`projections.export.safety.redaction_report` returns.

    Raises:
        ExportError: ``files`` lists ``manifest.json``.
    """
    if MANIFEST_NAME in files:
        raise ExportError(f"{MANIFEST_NAME} cannot list itself; leave it out of files")
    return {
        "ledger_id": ledger_id,
        "study": study,
        "as_of": as_of,
        "head_hash": head_hash,
        "format_version": format_version,
        "versions": dict(versions if versions is not None else package_versions()),
        "files": {name: info.to_json() for name, info in sorted(files.items())},
        "redacted": redacted,
    }


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a snapshot's manifest.

    Raises:
        ExportError: no manifest, or one that is not a JSON object.
    """
    import msgspec

    path = Path(folder) / MANIFEST_NAME
    try:
        data = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        raise ExportError(f"{os.fspath(path)}: no manifest; is this an export folder?") from None
    except msgspec.DecodeError as exc:
        raise ExportError(f"{os.fspath(path)}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ExportError(f"{os.fspath(path)}: not a manifest (no 'files' object)")
    return data


def verify_manifest(folder: str | os.PathLike[str]) -> list[str]:
    """Compare a snapshot folder with its manifest; return the problems (empty: intact).

    Reports files that are missing, changed (size or SHA-256) or not in the manifest.
    """
    root = Path(folder)
    manifest = read_manifest(root)
    listed = manifest["files"]
    problems = []
    for name in sorted(listed):
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        info = file_info(path)
        if info.sha256 != listed[name].get("sha256") or info.bytes != listed[name].get("bytes"):
            problems.append(f"{name}: content differs from the manifest (sha256 {info.sha256})")
    extra = sorted(
        p.name for p in root.iterdir() if p.name not in listed and p.name != MANIFEST_NAME
    )
    problems += [f"{name}: not listed in the manifest" for name in extra]
    return problems
