"""Write a snapshot folder so that it is complete or absent, never half-written.

Every file is written into a fresh temporary sibling (``<name>.tmp-<random>``) inside
the output folder, hashed (while it is written, where the writer allows), fsynced and
listed in the manifest; only then does the new folder take the final name. An existing
snapshot is swapped out with Linux's atomic
``renameat2(RENAME_EXCHANGE)`` where available (readers never see the name missing),
otherwise by renaming it aside, renaming the new one in and deleting the old one. A
crash at any point leaves the old snapshot or the new one under the final name, plus
at most ``*.tmp-*`` leftovers. Nothing is written outside the output folder, and a
symlink planted at the final name is refused, not followed.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from projections.export.csv_writer import write_csv
from projections.export.hashing_sink import HashingFile, write_hashed
from projections.export.json_writer import write_json
from projections.export.manifest import MANIFEST_NAME, FileInfo, file_info
from projections.export.parquet_writer import write_parquet
from projections.export.safety import ExportError, UnsafePathError, confine, safe_name

__all__ = ["FileSource", "Snapshot", "write_snapshot"]

#: How a file's content is given: a callable that writes the path it is handed (and
#: may return its row count, or the :class:`FileInfo` of what it wrote, as
#: :func:`~projections.export.hashing_sink.write_hashed` gives, which spares reading
#: the file back to hash it), an Arrow table (``.csv`` or ``.parquet`` by the name's
#: extension), bytes, or a JSON-able mapping/list for a ``.json`` name.
FileSource = Union[Callable[[Path], Union[FileInfo, int, None]], Any]


@dataclass(frozen=True)
class Snapshot:
    """Where a snapshot landed and what it holds (the manifest included, if written)."""

    path: Path
    files: dict[str, FileInfo] = field(default_factory=dict)


def write_snapshot(
    out_dir: str | os.PathLike[str],
    folder_name: str,
    files: Mapping[str, FileSource],
    *,
    manifest: Callable[[dict[str, FileInfo]], Mapping[str, Any]] | None = None,
    replace: bool = True,
) -> Snapshot:
    """Write ``files`` into ``out_dir/folder_name`` atomically and return what was written.

    ``folder_name`` and every file name must be safe names (``safe_name(n) == n``; use
    :func:`~projections.export.safety.assign_folder_names` for study names). With
    ``manifest``, it is called with the written files' :class:`FileInfo` (name order)
    and its result is written as ``manifest.json`` last, inside the same temporary
    folder. An existing folder is replaced only when ``replace`` is true and it looks
    like a snapshot (it has a manifest, or is empty), so a mistyped ``--out`` cannot
    wipe an unrelated folder.

    Raises:
        UnsafePathError: an unsafe folder or file name, or a symlink at the final name.
        ExportError: the final name holds a file or a non-snapshot folder, or exists and
            ``replace`` is false, or a source cannot be written. The final name is then
            untouched and the temporary folder removed.
    """
    base = Path(out_dir)
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve(strict=True)
    _check_name(folder_name, "folder")
    final = confine(base, folder_name)
    names = list(files)
    for name in names:
        _check_name(name, "file")
        if manifest is not None and name == MANIFEST_NAME:
            raise ExportError(f"file {MANIFEST_NAME!r} is written by the manifest callback")
    _check_target(base / folder_name, replace)

    tmp = _make_temp_dir(base, folder_name)
    try:
        infos: dict[str, FileInfo] = {}
        for name in names:
            path = confine(tmp, name)
            written = _write_source(files[name], path)
            _fsync_file(path)
            infos[name] = _file_info(path, written)
        if manifest is not None:
            path = tmp / MANIFEST_NAME
            doc = dict(manifest(dict(infos)))
            infos[MANIFEST_NAME] = write_hashed(path, lambda sink: write_json(doc, sink))
            _fsync_file(path)
        _fsync_dir(tmp)
        _check_target(base / folder_name, replace)  # again: time passed while writing
        _swap_in(base, tmp, folder_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(path=final, files=infos)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or safe_name(name) != name:
        suggestion = safe_name(name) if isinstance(name, str) else "a string"
        raise UnsafePathError(
            f"{what} name {name!r} is not a safe name; use {suggestion!r} "
            "(projections.export.safety.safe_name / assign_folder_names)"
        )


def _check_target(target: Path, replace: bool) -> None:
    if not os.path.lexists(target):
        return
    if target.is_symlink():
        raise UnsafePathError(
            f"{os.fspath(target)} is a symlink; exports never write through one. "
            "Remove it or choose another --out"
        )
    if not target.is_dir():
        raise ExportError(f"{os.fspath(target)} exists and is not a folder; move it away first")
    if not replace:
        raise ExportError(f"{os.fspath(target)} exists; pass replace=True to replace it")
    if not (target / MANIFEST_NAME).is_file() and any(target.iterdir()):
        raise ExportError(
            f"{os.fspath(target)} exists and is not an export snapshot (no {MANIFEST_NAME}); "
            "refusing to replace it. Choose another --out or remove the folder"
        )


def _make_temp_dir(base: Path, folder_name: str) -> Path:
    # mkdir is atomic and refuses an existing name (a planted symlink included); the
    # mode follows the umask, like the rest of the user's files.
    for _ in range(100):
        tmp = base / f"{folder_name}.tmp-{secrets.token_hex(4)}"
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        return tmp
    raise ExportError(f"cannot create a temporary folder in {os.fspath(base)}")


def _write_source(source: Any, path: Path) -> FileInfo | int | None:
    """Write one file; return its FileInfo when it was hashed while written, else its
    row count (or None) for :func:`_file_info` to hash it from disk."""
    import pyarrow as pa

    suffix = path.suffix.lower()
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        table = pa.Table.from_batches([source]) if isinstance(source, pa.RecordBatch) else source
        if suffix == ".csv":
            return write_hashed(path, lambda sink: write_csv(table, sink))
        if suffix == ".parquet":
            return write_hashed(path, lambda sink: write_parquet(table, sink))
        raise ExportError(f"{path.name}: an Arrow table needs a .csv or .parquet name")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)

        def put(sink: HashingFile) -> None:
            sink.write(data)

        return write_hashed(path, put)
    if isinstance(source, (Mapping, list)) and suffix == ".json":
        return write_hashed(path, lambda sink: write_json(source, sink))
    if callable(source):
        rows = source(path)
        if not path.is_file() or path.is_symlink():
            raise ExportError(f"{path.name}: the writer did not create a regular file")
        if isinstance(rows, FileInfo):
            return rows
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None
    raise ExportError(f"{path.name}: cannot write a {type(source).__name__}")


def _file_info(path: Path, written: FileInfo | int | None) -> FileInfo:
    """The hash taken while writing, or the file read back and hashed.

    A writer's own FileInfo is trusted only while the file still has the size it
    counted; a callable that changed the file after hashing it gets it hashed from disk,
    so the manifest always describes the bytes that are there.
    """
    if isinstance(written, FileInfo):
        if os.stat(path).st_size == written.bytes:
            return written
        return file_info(path, written.rows)
    return file_info(path, written)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # Windows cannot open folders; its renames are durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # the file system (or kernel) cannot exchange: fall back
    raise OSError(err, os.strerror(err), os.fspath(b))


def _swap_in(base: Path, tmp: Path, folder_name: str) -> None:
    final = base / folder_name
    if not os.path.lexists(final):
        try:
            os.rename(tmp, final)
        except OSError as exc:  # someone created the name meanwhile
            raise ExportError(f"{os.fspath(final)} appeared while exporting: {exc}") from None
        _fsync_dir(base)
        return
    if _exchange(tmp, final):
        _fsync_dir(base)
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old snapshot
        return
    aside = base / f"{folder_name}.old.tmp-{secrets.token_hex(4)}"
    os.rename(final, aside)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(aside, final)  # put the old snapshot back under its name
        raise
    _fsync_dir(base)
    shutil.rmtree(aside, ignore_errors=True)
