"""Hash an export file while it is written, so the manifest never reads it back.

Every file of a snapshot is listed in the manifest with its SHA-256. Reading each file
back to hash it was a second pass after the writer had finished; the writers that can
write into a Python file object — JSON (our bytes), CSV and Parquet (pyarrow wraps the
object and calls ``write`` with each buffer it produces, in order) — now write into a
:class:`HashingFile`, which gives the same bytes to the file and to the digest. The
xlsx writer zips into a seekable file and the workbook is small, so it is still hashed
from disk.

Reading a file back is cheap (the page cache); hashing it is not: SHA-256 runs at
~150-200 MB/s on the 2-core box these exports were measured on (no SHA instructions),
~0.4 s of CPU for the 75 MiB CSV of a million values. So a :class:`HashingFile` hands
1 MiB chunks to one background thread that writes and hashes them in order (both
release the GIL) while pyarrow formats the next ones. With a core to spare the hash
overlaps the formatting (the best CSV rounds were 10-20% faster than writing and then
reading back); on a busy machine it costs about what the read-back did.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, Union

from projections.export.manifest import FileInfo
from projections.export.safety import ExportError

__all__ = [
    "CHUNK_BYTES",
    "BinaryWriter",
    "HashingFile",
    "Sink",
    "pyarrow_sink",
    "sink_name",
    "write_hashed",
]


class BinaryWriter(Protocol):
    """A writable binary file object, as the writers use one: ``write_json`` calls
    ``write``; pyarrow's wrapper (``pa.PythonFile``) calls ``write`` with its buffers,
    reads ``closed``, may call ``close``, and asks ``writable()`` when the object has
    no ``mode``. Any ``IO[bytes]`` is one, and so is a :class:`HashingFile`."""

    @property
    def closed(self) -> bool: ...

    def writable(self) -> bool: ...

    def write(self, data: Any, /) -> int: ...

    def close(self) -> None: ...


#: Where a writer puts its bytes: a path, or a writable binary file object such as a
#: :class:`HashingFile` (written to, never closed).
Sink = Union[str, "os.PathLike[str]", BinaryWriter]

#: Bytes gathered before a chunk goes to the background thread: pyarrow writes ~80 KiB
#: at a time for CSV and anything from a few bytes (page headers) to ~150 KiB (pages)
#: for Parquet, and each hand-off costs a thread wake-up. A file smaller than this
#: never starts the thread.
CHUNK_BYTES = 1 << 20
_QUEUED_CHUNKS = 8  # at most this many chunks (and one being gathered) in memory

_DONE = None


class HashingFile:
    """A write-only binary file whose every written byte also goes into a SHA-256.

    The digest is taken from the very chunks written to the file, in the order they
    were written, so it is the SHA-256 of the file unless something else writes the
    path afterwards. Errors of the background thread (a full disk) are raised by the
    next ``write`` or by ``close``. Use it as a context manager: ``close`` waits for
    the thread and closes the file.
    """

    mode = "wb"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        self._digest = hashlib.sha256()
        self._size = 0
        self._gathered = bytearray()
        self._queue: queue.Queue[bytearray | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        # pyarrow reuses its buffers once this returns: the bytes are copied here.
        self._raise_error()
        view = memoryview(data).cast("B")
        self._gathered += view
        self._size += view.nbytes
        if len(self._gathered) >= CHUNK_BYTES:
            self._send(self._gathered)
            self._gathered = bytearray()
        return view.nbytes

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        """Nothing to do: bytes reach the file in order, and all of them by ``close``."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._thread is not None:
                self._queue.put(_DONE)
                self._thread.join()
            if self._gathered:
                self._consume(self._gathered)
                self._gathered = bytearray()
        finally:
            self._file.close()
        self._raise_error()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.close()
        except Exception:
            if exc_type is None:  # otherwise the writer's own error is the one to see
                raise

    def info(self, rows: int | None = None) -> FileInfo:
        """What the manifest lists for the file (call after ``close``)."""
        if not self._closed:
            raise ExportError(
                f"{self.name}: HashingFile.info() was called before close(); "
                "use write_hashed() or read info() after the with block"
            )
        return FileInfo(sha256=self._digest.hexdigest(), bytes=self._size, rows=rows)

    def _send(self, chunk: bytearray) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="export-hash", daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not _DONE:
            if self._error is None:  # after an error, keep emptying the queue only
                self._consume(chunk)

    def _consume(self, chunk: bytearray) -> None:
        try:
            self._file.write(chunk)
            self._digest.update(chunk)
        except BaseException as exc:  # re-raised in the writer's thread
            self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def write_hashed(path: str | os.PathLike[str], write: Callable[[HashingFile], Any]) -> FileInfo:
    """Create ``path``, let ``write`` fill it through a :class:`HashingFile`, return its
    :class:`FileInfo` (``rows`` is what ``write`` returned, when that is an int)."""
    with HashingFile(path) as sink:
        rows = write(sink)
    counted = isinstance(rows, int) and not isinstance(rows, bool)
    return sink.info(rows if counted else None)


def pyarrow_sink(target: Sink) -> Any:
    """What pyarrow's writers take for ``target``: the path as a string (pyarrow opens
    the file itself, as before there were file objects), or the file object."""
    return target if hasattr(target, "write") else os.fspath(target)  # type: ignore[arg-type]


def sink_name(target: Sink) -> str:
    """The path a sink writes, for messages."""
    if hasattr(target, "write"):
        return str(getattr(target, "name", "<stream>"))
    return os.fspath(target)  # type: ignore[arg-type]
