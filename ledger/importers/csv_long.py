"""Long CSV files as ledger events: a row per run, metric, step and value.

The shape a tool that logs one value at a time writes. Each column has a fixed role
(run, metric, step, value, and optionally study and case), so unlike a wide file
nothing is mapped beyond naming those columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .common import ImportResult, ImportSourceError, Progress, check_name, study_created
from .csv_cells import STATUS_WORDS, int_cell, number_cell, row_study
from .csv_events import case_created, run_events
from .csv_records import read_rows
from .csv_roles import match_columns, need_column


def read_csv_long(
    path: str | os.PathLike[str],
    *,
    study: str | None = None,
    study_column: str | None = None,
    run: str = "run",
    metric_column: str = "metric",
    step: str | None = "step",
    value_column: str = "value",
    case: Sequence[str] = (),
    case_sep: str = "/",
    ignore: Sequence[str] = (),
    unmapped: Literal["error", "ignore"] = "error",
    finish_status: str | None = "completed",
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    progress: Progress | None = None,
) -> ImportResult:
    """Parse a long CSV (a row per run, metric, step and value) into one batch of events.

    An empty step cell is a final value; ``step=None`` for files without a step column.
    The case is the ``case`` columns' values joined with ``case_sep``, else the run id.
    Runs finish with ``finish_status`` (``None`` leaves them open). A later row for the
    same run, metric and step supersedes an earlier one (counted as ``superseded``), as a
    later event would. Option names match ``read_csv_wide`` where they mean the same
    column, so one set of CLI flags serves both.

    Raises ``ImportSourceError`` naming ``file:line`` and the column for a value that is
    not a number, a step that is not an int ≥ 0, an empty run or metric cell, or a run
    whose case differs between rows; naming the file for missing or unmapped columns.
    """
    path = Path(path)
    src = str(path)
    if finish_status is not None and finish_status not in set(STATUS_WORDS.values()):
        raise ImportSourceError(
            f"finish_status must be a ledger status or None, not {finish_status!r}"
        )
    header, rows = read_rows(path, delimiter, encoding, progress)
    named = [
        (study_column, "--study-column"),
        (run, "--run"),
        (metric_column, "--metric-column"),
        (step, "--step"),
        (value_column, "--value-column"),
        *((c, "--case") for c in case),
    ]
    long_roles = _long_roles(header, named, ignore, unmapped, src)
    idx = {h: i for i, h in enumerate(header)}
    i_run, i_metric, i_value = idx[run], idx[metric_column], idx[value_column]
    i_step = idx[step] if step is not None else None
    i_case = [idx[c] for c in case]
    i_study = idx[study_column] if study_column is not None else None

    default_study = study if study is not None else path.stem
    study_order: dict[str, None] = {}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    empty = 0
    superseded = 0
    values_n = 0
    stepped_n = 0
    other_rows = 0
    for line, row in rows:
        where = f"{src}:{line}"
        s = row_study(row, i_study, study, default_study, where, study_column)
        if s is None:
            other_rows += 1
            continue
        study_order.setdefault(s, None)
        run_id = check_name(row[i_run], "run", where=where, field=run, label="column")
        case_id = case_sep.join(row[i] for i in i_case) if i_case else run_id
        check_name(case_id, "case", where=where, field=case[0] if case else run, label="column")
        name = row[i_metric]
        if not name:
            raise ImportSourceError(
                "is empty; every row names its metric",
                where=where,
                field=metric_column,
                label="column",
            )
        cell = row[i_value]
        if cell == "":
            empty += 1
            continue
        num = number_cell(cell, where, value_column)
        st = None
        if i_step is not None and row[i_step] != "":
            st = int_cell(row[i_step], where, step, "a step")
        r = found.get((s, run_id))
        if r is None:
            r = found[(s, run_id)] = {"case": case_id, "line": line, "final": {}, "steps": {}}
        elif r["case"] != case_id:
            raise ImportSourceError(
                f"run {run_id!r} belongs to case {r['case']!r} at line {r['line']} but to "
                f"{case_id!r} here",
                where=where,
                field=case[0] if case else run,
                label="column",
            )
        bucket = r["final"] if st is None else r["steps"].setdefault(st, {})
        if name in bucket:
            superseded += 1
        else:
            if st is None:
                values_n += 1
            else:
                stepped_n += 1
        bucket[name] = num

    if not found:
        what = f"no row of study {study!r}" if other_rows else "no values"
        raise ImportSourceError(f"{what}; nothing to import", where=src)

    events, n_cases = _long_events(study_order, found, finish_status)
    summary = {
        "source": src,
        "format": "long",
        "studies": list(study_order),
        "rows": len(rows),
        "rows_of_other_studies": other_rows,
        "cases": n_cases,
        "runs": len(found),
        "metric_values": values_n,
        "stepped_values": stepped_n,
        "superseded": superseded,
        "empty_cells_total": empty,
        "columns": {h: long_roles.get(h, "ignore") for h in header},
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)


def _long_roles(
    header: list[str],
    named: list[tuple[str | None, str]],
    ignore: Sequence[str],
    unmapped: str,
    src: str,
) -> dict[str, str]:
    """Each named column's role (``run``, ``metric`` ...), after checking that every
    named column exists and that no column is left unmapped under ``"error"``."""
    for col, option in named:
        need_column(header, col, option, src)
    used = {c for c, _ in named if c is not None}
    long_roles = {c: opt[2:].replace("-column", "") for c, opt in named if c}
    ignored = set(match_columns(header, ignore, "--ignore", src))
    left = [h for h in header if h not in used and h not in ignored]
    if left and unmapped == "error":
        raise ImportSourceError(
            f"{len(left)} column(s) not mapped to a role: {', '.join(left)}; a long file has "
            "run, metric, step, value (and case) columns; pass --ignore or --unmapped ignore",
            where=src,
        )
    return long_roles


def _long_events(
    study_order: dict[str, None],
    found: dict[tuple[str, str], dict[str, Any]],
    finish_status: str | None,
) -> tuple[list[dict[str, Any]], int]:
    """The events of the runs found (studies, cases, runs), and the number of cases."""
    events: list[dict[str, Any]] = [study_created(s) for s in study_order]
    seen_cases: set[tuple[str, str]] = set()
    for (s, _), r in found.items():
        if (s, r["case"]) not in seen_cases:
            seen_cases.add((s, r["case"]))
            events.append(case_created(s, r["case"]))
    for (s, run_id), r in found.items():
        run_events(
            events,
            s,
            r["case"],
            run_id,
            steps=((st, r["steps"][st], None) for st in sorted(r["steps"])),
            final=r["final"],
            status=finish_status,
        )
    return events, len(seen_cases)
