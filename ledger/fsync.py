"""Making a write durable: fsync a file, or the folder that holds a new name.

A file written and renamed into place survives a power cut only when both its bytes
(``fsync_file``) and the folder entry that names it (``fsync_dir`` on the folder) have
reached the disk (docs/reliability.md, "Durable files"). Every atomic write outside
the LMDB environment (anchors, export snapshots, merged ledgers) goes through these.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir", "fsync_file"]


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush ``path``'s bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str], *, strict: bool = True) -> None:
    """Make a rename or a new file in the folder ``path`` durable.

    With ``strict=False`` a folder that cannot be opened is skipped (Windows cannot open
    folders; its renames are durable enough); otherwise the ``OSError`` propagates.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
