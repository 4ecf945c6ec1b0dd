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


@dataclass(frozen=True)
class _Options:
    """The column options of ``read_csv_wide`` that the row loop reads."""

    study: str | None
    study_column: str | None
    case: Sequence[str]
    case_sep: str
    run: str | None
    stage: str | None
    status: str | None
    error_column: str | None
    error_key: str | None
    time_column: str | None
    naive_tz: str
    sample_as: SampleAs
    step: str | None


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
    opts = _Options(
        study,
        study_column,
        case,
        case_sep,
        run,
        stage,
        status,
        error_column,
        error_key,
        time_column,
        naive_tz,
        sample_as,
        step,
    )
    _check_options(opts, unmapped)
    header, rows = read_rows(path, delimiter, encoding, progress)
    roles = resolve_roles(
        header,
        rows,
        str(path),
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
    reader = _WideReader(opts, str(path), path.stem, header, roles)
    for n, (line, row) in enumerate(rows, 1):
        reader.row(n, line, row)
    return reader.result(len(rows))


def _check_options(opts: _Options, unmapped: str) -> None:
    if opts.sample_as not in ("run", "step"):
        raise ImportSourceError(f"sample_as must be 'run' or 'step', not {opts.sample_as!r}")
    if unmapped not in ("error", "config", "ignore", "auto"):
        raise ImportSourceError(
            f"unmapped must be 'error', 'config', 'ignore' or 'auto', not {unmapped!r}"
        )
    if opts.sample_as == "step" and opts.step is None:
        raise ImportSourceError(
            "sample_as='step' needs the step column (--step COLUMN, e.g. the sample index)"
        )
    if opts.sample_as == "step" and not opts.case:
        raise ImportSourceError(
            "sample_as='step' makes one run per case; name the case column(s) (--case)"
        )
    if opts.error_key is not None and opts.error_column is None:
        raise ImportSourceError("error_key needs error_column (--error-column)")


class _WideReader:
    """The rows of one wide file, read one at a time into cases, runs and counts."""

    def __init__(
        self, opts: _Options, src: str, stem: str, header: list[str], roles: dict[str, str]
    ) -> None:
        self.o = opts
        self.src = src
        self.header = header
        self.roles = roles
        idx = {h: i for i, h in enumerate(header)}
        self.idx = idx
        self.metric_cols = [(h, idx[h]) for h in header if roles[h] == "metric"]
        self.param_cols = [(h, idx[h]) for h in header if roles[h] == "param"]
        self.config_cols = [(h, idx[h]) for h in header if roles[h] in ("config", "json")]
        self.json_set = {h for h in header if roles[h] == "json"}
        self.case_idx = [idx[c] for c in opts.case]
        self.i_study = idx[opts.study_column] if opts.study_column is not None else None
        self.default_study = opts.study if opts.study is not None else stem
        self.empty: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.study_order: dict[str, None] = {}
        self.cases: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.runs: dict[tuple[str, str], _Run] = {}
        self.other_study_rows = 0
        self.assumed_tz = 0
        self.metric_values = 0
        self.stepped_values = 0
        self.run_lines: dict[tuple[str, str], int] = {}
        self.events_of_runs: list[dict[str, Any]] = []

    def row(self, n: int, line: int, row: list[str]) -> None:
        """Read data row ``n`` (1-based), at ``line`` of the file. The checks run in
        the order of the row's parts: ids, case, time, metrics, attributes, status."""
        o = self.o
        where = f"{self.src}:{line}"
        s = row_study(row, self.i_study, o.study, self.default_study, where, o.study_column)
        if s is None:
            self.other_study_rows += 1
            return
        self.study_order.setdefault(s, None)
        case_id, run_id = self._ids(n, row, where)
        self._case(s, case_id, line, row, where)
        ts = None
        if o.time_column is not None and row[self.idx[o.time_column]] != "":
            ts, assumed = time_cell(row[self.idx[o.time_column]], o.naive_tz, where, o.time_column)
            self.assumed_tz += assumed
        values = {c: number_cell(row[i], where, c) for c, i in self._filled(row, self.metric_cols)}
        attrs = self._attrs(row, ts, where)
        row_status = None
        if o.status is not None and row[self.idx[o.status]] != "":
            row_status = status_word(row[self.idx[o.status]], where, o.status)
        err = None
        if o.error_column is not None:
            err = error_text(row[self.idx[o.error_column]], o.error_key, where, o.error_column)
        if o.sample_as == "run":
            self._run_row(s, case_id, run_id, line, where, ts, values, attrs, row_status, err)
        else:
            self._step_row(s, case_id, run_id, line, row, where, ts, values, attrs, row_status, err)

    def _filled(self, row: list[str], cols: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The columns of ``cols`` with a value in ``row``; empty cells are counted."""
        out = []
        for c, i in cols:
            if row[i] == "":
                self.empty[c] += 1
            else:
                out.append((c, i))
        return out

    def _ids(self, n: int, row: list[str], where: str) -> tuple[str, str]:
        """The row's case id (its case columns joined) and run id, both checked."""
        o = self.o
        case_id = None
        if o.case:
            parts = []
            for c, i in zip(o.case, self.case_idx):
                if row[i] == "":
                    raise ImportSourceError(
                        "is empty; a case column needs a value",
                        where=where,
                        field=c,
                        label="column",
                    )
                parts.append(row[i])
            case_id = o.case_sep.join(parts)
        if o.sample_as == "run":
            run_id = row[self.idx[o.run]] if o.run is not None else f"row{n}"
            check_name(run_id, "run", where=where, field=o.run, label="column")
            case_id = case_id if case_id is not None else run_id
        else:
            assert case_id is not None  # _check_options: step mode names the case columns
            run_id = case_id
        check_name(
            case_id, "case", where=where, field=o.case[0] if o.case else o.run, label="column"
        )
        return case_id, run_id

    def _case(self, s: str, case_id: str, line: int, row: list[str], where: str) -> None:
        """Record the case's params and stage, or check them against its first row."""
        o = self.o
        case_params: dict[str, Any] = {c: row[i] for c, i in zip(o.case, self.case_idx)}
        for c, i in self._filled(row, self.param_cols):
            num = parse_number(row[i])
            case_params[c] = num if num is not None else row[i]
        stage_value = 0
        if o.stage is not None and row[self.idx[o.stage]] != "":
            stage_value = int_cell(row[self.idx[o.stage]], where, o.stage, "a stage")
        now = {"params": case_params, "stage": stage_value}
        key = (s, case_id)
        if key not in self.cases:
            self.cases[key] = (line, now)
            return
        first_line, first = self.cases[key]
        for what in ("params", "stage"):
            if first[what] != now[what]:
                raise ImportSourceError(
                    f"case {case_id!r} has {what} {now[what]!r} here but "
                    f"{first[what]!r} at line {first_line}; a case's {what} cannot "
                    "differ between its rows",
                    where=where,
                )

    def _attrs(self, row: list[str], ts: datetime | None, where: str) -> dict[str, Any]:
        """The run's attributes from the row: config and JSON columns, the time, and in
        run mode the step column (the same flags serve both modes)."""
        o = self.o
        attrs: dict[str, Any] = {}
        for c, i in self._filled(row, self.config_cols):
            attrs[c] = json_cell(row[i], where, c) if c in self.json_set else row[i]
        if o.time_column is not None and ts is not None:
            attrs[o.time_column] = format_utc(ts)
        if o.sample_as == "run" and o.step is not None and row[self.idx[o.step]] != "":
            attrs[o.step] = int_cell(row[self.idx[o.step]], where, o.step, "a step")
        return attrs

    def _run_row(
        self,
        s: str,
        case_id: str,
        run_id: str,
        line: int,
        where: str,
        ts: datetime | None,
        values: dict[str, int | float],
        attrs: dict[str, Any],
        row_status: str | None,
        err: str | None,
    ) -> None:
        """A row that is a whole run: its events now."""
        rkey = (s, run_id)
        if rkey in self.run_lines:
            raise ImportSourceError(
                f"run {run_id!r} appears again (first at line {self.run_lines[rkey]}); run ids "
                "are unique within a study",
                where=where,
                field=self.o.run,
                label="column",
            )
        self.run_lines[rkey] = line
        final_status = row_status or (status_from_error(err) if err else "completed")
        self.statuses[final_status] += 1
        self.metric_values += len(values)
        stamp = format_utc(ts) if ts is not None else None
        run_events(
            self.events_of_runs,
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

    def _step_row(
        self,
        s: str,
        case_id: str,
        run_id: str,
        line: int,
        row: list[str],
        where: str,
        ts: datetime | None,
        values: dict[str, int | float],
        attrs: dict[str, Any],
        row_status: str | None,
        err: str | None,
    ) -> None:
        """A row that is one step (sample) of its case's run: gathered until the end."""
        o = self.o
        assert o.step is not None  # _check_options: step mode names the step column
        st = int_cell(row[self.idx[o.step]], where, o.step, "a step")
        rkey = (s, run_id)
        r = self.runs.get(rkey)
        if r is None:
            r = self.runs[rkey] = _Run(s, case_id, run_id, line, ts=ts, ts_end=ts)
        elif st in r.steps:
            raise ImportSourceError(
                f"step {st} of run {run_id!r} appears again (first at line {r.steps[st][0]})",
                where=where,
                field=o.step,
                label="column",
            )
        if ts is not None:
            r.ts = ts if r.ts is None or ts < r.ts else r.ts
            r.ts_end = ts if r.ts_end is None or ts > r.ts_end else r.ts_end
        if o.run is not None and row[self.idx[o.run]] != "":
            attrs[o.run] = row[self.idx[o.run]]
        r.steps[st] = (line, values, ts)
        self.stepped_values += len(values)
        for c, v in attrs.items():
            r.per_step.setdefault(c, {})[str(st)] = v
        if err:
            r.per_step.setdefault("errors", {})[str(st)] = err
        if row_status is None:
            return
        if r.status is not None and r.status != row_status:
            raise ImportSourceError(
                f"run {run_id!r} is {r.status!r} in an earlier row and "
                f"{row_status!r} here; with sample_as='step' the status column "
                "describes the whole run",
                where=where,
                field=o.status,
                label="column",
            )
        r.status = row_status

    def result(self, n_rows: int) -> ImportResult:
        """The events (studies, cases, then runs) and the summary, once every row is read."""
        if not n_rows or not (self.runs or self.run_lines):
            what = f"no row of study {self.o.study!r}" if self.other_study_rows else "no data rows"
            raise ImportSourceError(f"{what}; nothing to import", where=self.src)
        events: list[dict[str, Any]] = [study_created(s) for s in self.study_order]
        for (s, case_id), (_, info) in self.cases.items():
            events.append(case_created(s, case_id, info["stage"], info["params"]))
        events.extend(self.events_of_runs)
        for r in self.runs.values():
            r.status = r.status or "completed"
            self.statuses[r.status] += 1
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
        return ImportResult(events=events, summary=self._summary(n_rows, len(events)))

    def _summary(self, n_rows: int, n_events: int) -> dict[str, Any]:
        return {
            "source": self.src,
            "format": "wide",
            "sample_as": self.o.sample_as,
            "studies": list(self.study_order),
            "rows": n_rows,
            "rows_of_other_studies": self.other_study_rows,
            "cases": len(self.cases),
            "runs": len(self.runs) + len(self.run_lines),
            "metric_values": self.metric_values,
            "stepped_values": self.stepped_values,
            "empty_cells": dict(sorted(self.empty.items())),
            "empty_cells_total": sum(self.empty.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "columns": {h: self.roles[h] for h in self.header},
            "times_without_offset": {"count": self.assumed_tz, "assumed_zone": self.o.naive_tz},
            "events": n_events,
        }


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
