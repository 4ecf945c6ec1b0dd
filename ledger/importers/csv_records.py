"""Reading a CSV file into its header and records, each with the line it starts on.

Every later error names ``file:line``, and a quoted cell can hold newlines, so the line
a record starts on is kept beside it rather than counted from the record's index. The
whole file is read and checked (widths, header names, encoding) before any cell is
interpreted, so a broken file fails with one message about the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .common import ImportSourceError, Progress, Ticker

MAX_CELL = 1 << 20


def read_rows(
    path: Path, delimiter: str, encoding: str, progress: Progress | None
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every record with the line it starts on; blank lines skipped."""
    try:
        handle = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise ImportSourceError(f"cannot read: {exc.strerror}", where=str(path)) from None
    ticker = Ticker(progress, None, every=8192)  # rows read; the total is not known up front
    rows: list[tuple[int, list[str]]] = []
    # long model outputs exceed the csv module's 128 KiB default; an event takes 1 MiB
    limit = csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise ImportSourceError("the file is empty; a CSV needs a header", where=str(path))
            width = len(header)
            end = reader.line_num
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise ImportSourceError(
                        f"{len(row)} fields, the header has {width}",
                        where=f"{path}:{start}",
                    )
                rows.append((start, row))
                ticker.tick(len(rows))
        except csv.Error as exc:
            raise ImportSourceError(
                f"malformed CSV: {exc}", where=f"{path}:{reader.line_num}"
            ) from None
        except UnicodeDecodeError as exc:
            raise ImportSourceError(
                f"not {encoding} text ({exc.reason}); pass the file's encoding",
                where=str(path),
            ) from None
        finally:
            csv.field_size_limit(limit)
    ticker.done(len(rows))
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if not name:
            raise ImportSourceError(
                "a header cell is empty; every column needs a name", where=f"{path}:1"
            )
        if name in seen:
            raise ImportSourceError(
                "appears twice in the header", where=f"{path}:1", field=name, label="column"
            )
        seen.add(name)
    return names, rows
