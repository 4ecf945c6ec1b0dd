"""Wide CSV files as ledger events: a row per run, or a row per sample (step) of a run.

Every column gets exactly one role (``csv_roles``): fixed roles, one column each:
``study_column``, ``run``, ``stage``, ``status``, ``step``, ``time_column``; ``case``
names one or more columns joined (with ``case_sep``) into the case id, each also a case
param (kept as text); by name or glob: ``metrics`` (numbers: a cell that is not a number
is an error naming file:line and column), ``params`` (case params, numbers where the
cell is one), ``config`` (run attributes, kept as text), ``json_columns`` (run
attributes parsed as JSON), ``ignore``; every other column follows ``unmapped``:
``"error"`` (the default: the error lists them and how to map them), ``"config"``,
``"ignore"`` or ``"auto"`` (a column whose non-empty cells are all numbers is a metric,
any other an attribute). The summary's ``columns`` lists every column's role, so
``--dry-run`` shows what went where.

``error_column`` (with ``error_key`` to read one key of a JSON object cell) is read in
addition to the column's role: a non-empty error means the run did not complete; its
status follows the error's text (``csv_cells.status_from_error``) unless the
``status`` column says otherwise.

``sample_as="run"`` makes each row a run (id from ``run``, else ``row<N>`` with N the
1-based data row). ``sample_as="step"`` makes each row a step (``step`` column, an
int ≥ 0) of one run per case whose id is the case id; attributes that differ between a
run's rows are kept per step as ``{"<step>": value}``, and per-sample errors under
``config["errors"]``, while the run itself completes.

Empty cells are skipped and counted per column.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .common import (
    ImportResult,
    ImportSourceError,
    Progress,
    check_name,
    format_utc,
    parse_number,
    study_created,
)
from .csv_cells import (
    error_text,
    int_cell,
    json_cell,
    number_cell,
    row_study,
    status_from_error,
    status_word,
    time_cell,
)
from .csv_events import case_created, run_events
from .csv_records import read_rows
from .csv_roles import resolve_roles

Unmapped = Literal["error", "config", "ignore", "auto"]
SampleAs = Literal["run", "step"]


@dataclass(slots=True)
class _Run:
    study: str
    case: str
    run: str
    line: int
    ts: datetime | None = None
    ts_end: datetime | None = None
    status: str | None = None
    steps: dict[int, tuple[int, dict[str, int | float], datetime | None]] = field(
        default_factory=dict
    )
    per_step: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_csv_wide(
    path: str | os.PathLike[str],
    *,
    study: str | None = None,
    study_column: str | None = None,
    case: Sequence[str] = (),
    case_sep: str = "/",
    run: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    error_column: str | None = None,
    error_key: str | None = None,
    params: Sequence[str] = (),
    metrics: Sequence[str] = (),
    config: Sequence[str] = (),
    json_columns: Sequence[str] = (),
    ignore: Sequence[str] = (),
    time_column: str | None = None,
    naive_tz: str = "UTC",
    unmapped: Unmapped = "error",
    sample_as: SampleAs = "run",
    step: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    progress: Progress | None = None,
) -> ImportResult:
    """Parse a wide CSV (one row per run, or per sample) into one batch of events.

    ``study`` names the target study (default: the file's stem); with ``study_column``
    each value of that column is a study, and ``study`` then keeps only its rows.
    ``time_column`` times the run (times without an offset are read in ``naive_tz``;
    the summary says how many). See the module docstring for the column roles.

    Raises ``ImportSourceError`` naming ``file:line`` and the column for a cell that is not
    a number in a metric column, an unknown status, a stage or step that is not an int
    ≥ 0, invalid JSON, a bad time, a run id seen twice, a case whose params or stage
    differ between rows; and naming the file for options that match no column or for
    columns left unmapped under ``unmapped="error"``.
    """
    path = Path(path)
    src = str(path)
    if sample_as not in ("run", "step"):
        raise ImportSourceError(f"sample_as must be 'run' or 'step', not {sample_as!r}")
    if unmapped not in ("error", "config", "ignore", "auto"):
        raise ImportSourceError(
            f"unmapped must be 'error', 'config', 'ignore' or 'auto', not {unmapped!r}"
        )
    if sample_as == "step" and step is None:
        raise ImportSourceError(
            "sample_as='step' needs the step column (--step COLUMN, e.g. the sample index)"
        )
    if sample_as == "step" and not case:
        raise ImportSourceError(
            "sample_as='step' makes one run per case; name the case column(s) (--case)"
        )
    if error_key is not None and error_column is None:
        raise ImportSourceError("error_key needs error_column (--error-column)")

    header, rows = read_rows(path, delimiter, encoding, progress)

    roles = resolve_roles(
        header,
        rows,
        src,
        fixed=[
            (study_column, "study", "--study-column"),
            (run, "run", "--run"),
            (stage, "stage", "--stage"),
            (status, "status", "--status"),
            (step, "step", "--step"),
            (time_column, "time", "--time-column"),
        ],
        case=case,
        error_column=error_column,
        by_pattern=[
            ("--json-column", json_columns, "json"),
            ("--metric", metrics, "metric"),
            ("--param", params, "param"),
            ("--config", config, "config"),
            ("--ignore", ignore, "ignore"),
        ],
        unmapped=unmapped,
    )
    idx = {h: i for i, h in enumerate(header)}
    metric_cols = [(h, idx[h]) for h in header if roles[h] == "metric"]
    param_cols = [(h, idx[h]) for h in header if roles[h] == "param"]
    config_cols = [(h, idx[h]) for h in header if roles[h] in ("config", "json")]
    json_set = {h for h in header if roles[h] == "json"}
    case_idx = [idx[c] for c in case]
    i_study = idx[study_column] if study_column is not None else None

    # -- rows -------------------------------------------------------------------
    default_study = study if study is not None else path.stem
    empty: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    study_order: dict[str, None] = {}
    cases: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    runs: dict[tuple[str, str], _Run] = {}
    other_study_rows = 0
    assumed_tz = 0
    metric_values = 0
    stepped_values = 0

    run_lines: dict[tuple[str, str], int] = {}
    events_of_runs: list[dict[str, Any]] = []
    for n, (line, row) in enumerate(rows, 1):
        where = f"{src}:{line}"
        s = row_study(row, i_study, study, default_study, where, study_column)
        if s is None:
            other_study_rows += 1
            continue
        study_order.setdefault(s, None)

        # case and its params
        if case:
            parts = []
            for c, i in zip(case, case_idx):
                if row[i] == "":
                    raise ImportSourceError(
                        "is empty; a case column needs a value",
                        where=where,
                        field=c,
                        label="column",
                    )
                parts.append(row[i])
            case_id = case_sep.join(parts)
        else:
            case_id = None
        run_cell = row[idx[run]] if run is not None else None
        if sample_as == "run":
            run_id = run_cell if run is not None else f"row{n}"
            check_name(run_id, "run", where=where, field=run, label="column")
            case_id = case_id if case_id is not None else run_id
        else:
            assert case_id is not None
            run_id = case_id
        check_name(case_id, "case", where=where, field=case[0] if case else run, label="column")

        case_params: dict[str, Any] = {c: row[i] for c, i in zip(case, case_idx)}
        for c, i in param_cols:
            cell = row[i]
            if cell == "":
                empty[c] += 1
                continue
            num = parse_number(cell)
            case_params[c] = num if num is not None else cell
        stage_value = 0
        if stage is not None and row[idx[stage]] != "":
            stage_value = int_cell(row[idx[stage]], where, stage, "a stage")
        key = (s, case_id)
        if key in cases:
            first_line, first = cases[key]
            now = {"params": case_params, "stage": stage_value}
            for what in ("params", "stage"):
                if first[what] != now[what]:
                    raise ImportSourceError(
                        f"case {case_id!r} has {what} {now[what]!r} here but "
                        f"{first[what]!r} at line {first_line}; a case's {what} cannot "
                        "differ between its rows",
                        where=where,
                    )
        else:
            cases[key] = (line, {"params": case_params, "stage": stage_value})

        # time
        ts = None
        if time_column is not None:
            cell = row[idx[time_column]]
            if cell != "":
                ts, assumed = time_cell(cell, naive_tz, where, time_column)
                assumed_tz += assumed

        # metrics
        values = {}
        for c, i in metric_cols:
            cell = row[i]
            if cell == "":
                empty[c] += 1
                continue
            values[c] = number_cell(cell, where, c)

        # attributes
        attrs: dict[str, Any] = {}
        for c, i in config_cols:
            cell = row[i]
            if cell == "":
                empty[c] += 1
                continue
            attrs[c] = json_cell(cell, where, c) if c in json_set else cell
        if time_column is not None and ts is not None:
            attrs[time_column] = format_utc(ts)
        if sample_as == "run" and step is not None and row[idx[step]] != "":
            # the same flags serve both modes: in run mode the sample index is an attribute
            attrs[step] = int_cell(row[idx[step]], where, step, "a step")

        # status and error
        row_status = None
        if status is not None and row[idx[status]] != "":
            row_status = status_word(row[idx[status]], where, status)
        err = None
        if error_column is not None:
            err = error_text(row[idx[error_column]], error_key, where, error_column)

        rkey = (s, run_id)
        if sample_as == "run":
            if rkey in run_lines:
                raise ImportSourceError(
                    f"run {run_id!r} appears again (first at line {run_lines[rkey]}); run ids "
                    "are unique within a study",
                    where=where,
                    field=run,
                    label="column",
                )
            run_lines[rkey] = line
            final_status = row_status or (status_from_error(err) if err else "completed")
            statuses[final_status] += 1
            metric_values += len(values)
            stamp = format_utc(ts) if ts is not None else None
            run_events(
                events_of_runs,
                s,
                case_id,
                run_id,
                config=attrs,
                ts=stamp,
                final=values,
                status=final_status,
                error=err,
                ended=stamp,
            )
        else:
            st = int_cell(row[idx[step]], where, step, "a step")  # type: ignore[index]
            r = runs.get(rkey)
            if r is None:
                r = runs[rkey] = _Run(s, case_id, run_id, line, ts=ts, ts_end=ts)
            elif st in r.steps:
                raise ImportSourceError(
                    f"step {st} of run {run_id!r} appears again (first at line {r.steps[st][0]})",
                    where=where,
                    field=step,
                    label="column",
                )
            if ts is not None:
                r.ts = ts if r.ts is None or ts < r.ts else r.ts
                r.ts_end = ts if r.ts_end is None or ts > r.ts_end else r.ts_end
            if run is not None and run_cell != "":
                attrs[run] = run_cell
            r.steps[st] = (line, values, ts)
            stepped_values += len(values)
            for c, v in attrs.items():
                r.per_step.setdefault(c, {})[str(st)] = v
            if err:
                r.per_step.setdefault("errors", {})[str(st)] = err
            if row_status is not None:
                if r.status is not None and r.status != row_status:
                    raise ImportSourceError(
                        f"run {run_id!r} is {r.status!r} in an earlier row and "
                        f"{row_status!r} here; with sample_as='step' the status column "
                        "describes the whole run",
                        where=where,
                        field=status,
                        label="column",
                    )
                r.status = row_status

    if not rows or not (runs or run_lines):
        what = f"no row of study {study!r}" if other_study_rows else "no data rows"
        raise ImportSourceError(f"{what}; nothing to import", where=src)

    events: list[dict[str, Any]] = [study_created(s) for s in study_order]
    for (s, case_id), (_, info) in cases.items():
        events.append(case_created(s, case_id, info["stage"], info["params"]))
    events.extend(events_of_runs)
    for r in runs.values():
        r.status = r.status or "completed"
        statuses[r.status] += 1
        run_events(
            events,
            r.study,
            r.case,
            r.run,
            config=_collapse(r.per_step, len(r.steps)),
            ts=format_utc(r.ts) if r.ts is not None else None,
            steps=(
                (st, values, format_utc(at) if at is not None else None)
                for st, (_, values, at) in sorted(r.steps.items())
            ),
            status=r.status,
            ended=format_utc(r.ts_end) if r.ts_end is not None else None,
        )

    summary = {
        "source": src,
        "format": "wide",
        "sample_as": sample_as,
        "studies": list(study_order),
        "rows": len(rows),
        "rows_of_other_studies": other_study_rows,
        "cases": len(cases),
        "runs": len(runs) + len(run_lines),
        "metric_values": metric_values,
        "stepped_values": stepped_values,
        "empty_cells": dict(sorted(empty.items())),
        "empty_cells_total": sum(empty.values()),
        "statuses": dict(sorted(statuses.items())),
        "columns": {h: roles[h] for h in header},
        "times_without_offset": {"count": assumed_tz, "assumed_zone": naive_tz},
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)


def _collapse(per_step: dict[str, dict[str, Any]], n_steps: int) -> dict[str, Any]:
    """A run's attributes in step mode: one value when every step agrees, else per step."""
    out: dict[str, Any] = {}
    for col, by_step in per_step.items():
        vals = list(by_step.values())
        if col != "errors" and len(vals) == n_steps and all(v == vals[0] for v in vals):
            out[col] = vals[0]
        else:
            out[col] = by_step
    return out
