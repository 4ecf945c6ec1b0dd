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

Leftovers do not pile up. The writer holds an exclusive ``flock`` on its temporary
folder (and on the old snapshot it moves aside) for as long as it lives; the kernel
drops the lock when the process dies, however it dies. Each export first removes the
temporary folders of ours in its output folder whose lock it can take: named
``<folder>.tmp-<8 hex>`` or ``<folder>.old.tmp-<8 hex>``, holding nothing but export
files (``.json``, ``.csv``, ``.parquet``, ``.xlsx``, ``.html``). Anything else is left
alone. A SIGTERM while the temporary folder exists removes it, then lets the signal
kill the process as it would have (when nobody else handles SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ledger.fsync import fsync_dir, fsync_file
from projections.export.csv_writer import write_csv
from projections.export.hashing_sink import HashingFile, write_hashed
from projections.export.json_writer import write_json
from projections.export.manifest import MANIFEST_NAME, FileInfo, file_info
from projections.export.parquet_writer import write_parquet
from projections.export.safety import (
    TEMP_LIKE,
    ExportError,
    UnsafePathError,
    confine,
    safe_name,
)

__all__ = ["FileSource", "Snapshot", "clean_stale_temporaries", "write_snapshot"]

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
    base = _make_out_dir(Path(out_dir))
    _check_name(folder_name, "folder")
    final = confine(base, folder_name)
    names = list(files)
    for name in names:
        _check_name(name, "file")
        if manifest is not None and name == MANIFEST_NAME:
            raise ExportError(f"file {MANIFEST_NAME!r} is written by the manifest callback")
    _check_target(base / folder_name, replace)
    clean_stale_temporaries(base)

    with _terminate_cleanly():
        tmp, lock = _make_temp_dir(base, folder_name)
        try:
            return _write_into(
                base, tmp, final, folder_name, files, names, manifest=manifest, replace=replace
            )
        finally:
            os.close(lock)


def _write_into(
    base: Path,
    tmp: Path,
    final: Path,
    folder_name: str,
    files: Mapping[str, FileSource],
    names: list[str],
    *,
    manifest: Callable[[dict[str, FileInfo]], Mapping[str, Any]] | None,
    replace: bool,
) -> Snapshot:
    """Write every file into ``tmp``, then swap it in; ``tmp`` is gone either way."""
    try:
        infos: dict[str, FileInfo] = {}
        for name in names:
            path = confine(tmp, name)
            written = _write_source(files[name], path)
            fsync_file(path)
            infos[name] = _file_info(path, written)
        if manifest is not None:
            path = tmp / MANIFEST_NAME
            doc = dict(manifest(dict(infos)))
            infos[MANIFEST_NAME] = write_hashed(path, lambda sink: write_json(doc, sink))
            fsync_file(path)
        fsync_dir(tmp, strict=False)
        _check_target(base / folder_name, replace)  # again: time passed while writing
        _swap_in(base, tmp, folder_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(path=final, files=infos)


def _make_out_dir(out: Path) -> Path:
    """Create the output folder (and its parents); a file in the way, or a folder that
    cannot be created, is an ``ExportError`` naming it, not an ``OSError``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        return out.resolve(strict=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        why = (
            f"{os.fspath(blocker)} is a file, not a folder"
            if blocker is not None
            else "a part of the path is not a folder"
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
    raise ExportError(f"cannot use --out {os.fspath(out)}: {why}; choose another folder")


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


def _make_temp_dir(base: Path, folder_name: str) -> tuple[Path, int]:
    """A fresh ``<folder>.tmp-<8 hex>`` in ``base``, and the descriptor holding its lock.

    mkdir is atomic and refuses an existing name (a planted symlink included); the mode
    follows the umask, like the rest of the user's files. A cleaner that took the lock
    between our mkdir and our flock (and removed the folder) makes us try another name.
    """
    for _ in range(100):
        tmp = base / f"{folder_name}.tmp-{secrets.token_hex(4)}"
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        fd = _lock(tmp)
        if fd is not None:
            return tmp, fd
    raise ExportError(f"cannot create a temporary folder in {os.fspath(base)}")


# ------------------------------------------------------------ leftovers and SIGTERM

#: The temporary names this module gives (a new snapshot, or an old one moved aside);
#: ``safe_name`` never gives a snapshot folder such a name.
_TEMP_NAME = TEMP_LIKE
#: What a temporary folder of ours may hold: files of these kinds, nothing else.
_EXPORT_SUFFIXES = (".json", ".csv", ".parquet", ".xlsx", ".html")


def _lock(path: Path) -> int | None:
    """An open descriptor of folder ``path`` holding an exclusive ``flock`` on it, or
    None when another process holds it or the folder is not (any more) at ``path``.
    Where ``fcntl`` does not exist (Windows), a descriptor without a lock."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _only_export_files(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return all(
                e.is_file(follow_symlinks=False) and e.name.endswith(_EXPORT_SUFFIXES)
                for e in entries
            )
    except OSError:
        return False


def clean_stale_temporaries(out_dir: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary folders a killed export left in ``out_dir``; return their
    names. Only ours (see the module doc) and only when no live process holds their
    lock; best effort: what cannot be removed stays, and no error is raised."""
    removed: list[str] = []
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - no flock to judge by
        return removed
    try:
        with os.scandir(out_dir) as entries:
            candidates = [
                Path(e.path)
                for e in entries
                if _TEMP_NAME.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
            ]
    except OSError:
        return removed
    for path in sorted(candidates):
        fd = _lock(path)
        if fd is None:
            continue  # its writer still runs (or it is gone already)
        try:
            if _only_export_files(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        finally:
            os.close(fd)
    return removed


class _Terminated(BaseException):
    """SIGTERM arrived while a temporary folder existed (unwinds to its cleanup)."""


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into ``_Terminated`` while the body runs, so the temporary folder
    is removed; then die of SIGTERM as the process would have. Only in the main
    thread and only when SIGTERM has its default action: a program that handles
    SIGTERM itself keeps its handler (and the next export cleans up instead)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one cleanup, not two
        received.append(signum)
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # Also when the exception never surfaced: CPython can lose one raised by a
        # handler (seen while ``compile`` ran for a lazy import), and the body then
        # finished its work. The process still dies of the signal it was sent.
        if received:
            os.kill(os.getpid(), signal.SIGTERM)


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
        fsync_dir(base, strict=False)
        return
    if _exchange(tmp, final):
        fsync_dir(base, strict=False)
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old snapshot
        return
    aside = base / f"{folder_name}.old.tmp-{secrets.token_hex(4)}"
    held = _lock(final)  # the old snapshot, while it sits under a temporary name
    try:
        os.rename(final, aside)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(aside, final)  # put the old snapshot back under its name
            raise
        fsync_dir(base, strict=False)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        if held is not None:
            os.close(held)
