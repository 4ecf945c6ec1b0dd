"""Progress on stderr for long commands: one rewritten line, only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

__all__ = ["StderrProgress", "parse_with"]


class StderrProgress:
    """``progress(done, total)`` for the importers: one rewritten line on stderr.

    Silent unless the stream is a terminal (``isatty``): a progress bar in a pipe or a
    CI log is noise. The importers already call it only every few thousand rows.
    """

    width = 24

    def __init__(self, label: str, unit: str, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.label = label
        self.unit = unit
        self._shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * self.width)
            text = f"{self.label} [{bar:<{self.width}}] {frac:4.0%} {done:,}/{total:,} {self.unit}"
        else:
            text = f"{self.label}: {done:,} {self.unit}"
        self.status(text)

    def status(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def parse_with(progress: StderrProgress, read: Callable[[Any], Any]) -> Any:
    """Run one reader with the progress line, and clear the line whatever happens."""
    try:
        return read(progress)
    finally:
        progress.close()
