"""CSV files as ledger events: wide (a row per run or per sample) and long (a row per value).

Every column of a wide file gets exactly one role, and nothing is guessed silently:

- fixed roles, one column each: ``study_column``, ``run``, ``stage``, ``status``,
  ``step``, ``time_column``; ``case`` names one or more columns joined (with
  ``case_sep``) into the case id, each also a case param (kept as text);
- by name or glob (``fnmatch``, case-sensitive): ``metrics`` (numbers: a cell that is not
  a number is an error naming file:line and column), ``params`` (case params, numbers
  where the cell is one), ``config`` (run attributes, kept as text), ``json_columns``
  (run attributes parsed as JSON), ``ignore``;
- every other column follows ``unmapped``: ``"error"`` (the default: the error lists
  them and how to map them), ``"config"``, ``"ignore"`` or ``"auto"`` (a column whose
  non-empty cells are all numbers is a metric, any other an attribute). The summary's
  ``columns`` lists every column's role, so ``--dry-run`` shows what went where.

``error_column`` (with ``error_key`` to read one key of a JSON object cell) is read in
addition to the column's role: a non-empty error means the run did not complete; its
status is ``timeout`` when the text says it timed out, ``cancelled`` for
cancel/kill/abort, ``interrupted`` for an interruption, else ``failed``, unless the
``status`` column says otherwise.

``sample_as="run"`` makes each row a run (id from ``run``, else ``row<N>`` with N the
1-based data row). ``sample_as="step"`` makes each row a step (``step`` column, an
int ≥ 0) of one run per case whose id is the case id; attributes that differ between a
run's rows are kept per step as ``{"<step>": value}``, and per-sample errors under
``config["errors"]``, while the run itself completes.

Empty cells are skipped and counted per column. Quoted fields with commas, quotes and
newlines are read by the ``csv`` module; errors name the line the record starts on.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from .common import (
    ImportResult,
    ImportSourceError,
    Progress,
    Ticker,
    bounded_id,
    check_name,
    format_utc,
    parse_number,
    stable_id,
    study_created,
    to_utc,
)

__all__ = ["STATUS_WORDS", "read_csv_long", "read_csv_wide", "status_from_error"]

Unmapped = Literal["error", "config", "ignore", "auto"]
SampleAs = Literal["run", "step"]

STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        [
            "completed",
            "complete",
            "success",
            "succeeded",
            "successful",
            "finished",
            "ok",
            "done",
            "pass",
            "passed",
        ],
        "completed",
    ),
    **dict.fromkeys(["failed", "fail", "failure", "error", "errored", "crashed"], "failed"),
    **dict.fromkeys(["pruned"], "pruned"),
    **dict.fromkeys(["timeout", "timed_out", "timedout", "time_out"], "timeout"),
    **dict.fromkeys(["cancelled", "canceled", "killed", "aborted"], "cancelled"),
    **dict.fromkeys(["interrupted"], "interrupted"),
}
MAX_CELL = 1 << 20
_TIMEOUT = re.compile(r"time[sd]?[\s_-]*out|deadline", re.IGNORECASE)
_CANCEL = re.compile(r"cancel|kill|abort", re.IGNORECASE)
_INTERRUPT = re.compile(r"interrupt", re.IGNORECASE)


def status_from_error(text: str) -> str:
    """The ledger status an error message implies (see the module docstring)."""
    if _TIMEOUT.search(text):
        return "timeout"
    if _CANCEL.search(text):
        return "cancelled"
    if _INTERRUPT.search(text):
        return "interrupted"
    return "failed"


def _status_word(text: str, where: str, column: str) -> str:
    word = text.strip().lower().replace("-", "_").replace(" ", "_")
    status = STATUS_WORDS.get(word)
    if status is None:
        known = ", ".join(sorted(STATUS_WORDS))
        raise ImportSourceError(
            f"{text!r} is not a known status (known: {known})",
            where=where,
            field=column,
            label="column",
        )
    return status


# -- reading ---------------------------------------------------------------------


def _read_rows(
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


def _match(header: list[str], patterns: Iterable[str], option: str, where: str) -> list[str]:
    out: list[str] = []
    for pat in patterns:
        hits = [h for h in header if fnmatchcase(h, pat)]
        if not hits:
            raise ImportSourceError(
                f"{option} {pat!r} matches no column; the columns are: {', '.join(header)}",
                where=where,
            )
        out.extend(h for h in hits if h not in out)
    return out


def _need(header: list[str], name: str | None, option: str, where: str) -> None:
    if name is not None and name not in header:
        raise ImportSourceError(
            f"{option} {name!r} is not a column; the columns are: {', '.join(header)}",
            where=where,
        )


def _resolve_roles(
    header: list[str],
    rows: list[tuple[int, list[str]]],
    src: str,
    *,
    fixed: list[tuple[str | None, str, str]],
    case: Sequence[str],
    error_column: str | None,
    by_pattern: list[tuple[str, Sequence[str], str]],
    unmapped: str,
) -> dict[str, str]:
    """Every column's one role, or an error naming the option or the columns left over."""
    roles: dict[str, str] = {}

    def claim(col: str, role: str) -> None:
        if col in roles and roles[col] != role:
            raise ImportSourceError(
                f"mapped twice: as {roles[col]} and as {role}; give each column one role",
                where=src,
                field=col,
                label="column",
            )
        roles[col] = role

    for col, role, option in fixed:
        _need(header, col, option, src)
        if col is not None:
            claim(col, role)
    for col in case:
        _need(header, col, "--case", src)
        claim(col, "case")
    _need(header, error_column, "--error-column", src)  # read, not claimed: it has a role too
    for option, pats, role in by_pattern:
        # a glob never steals a column that a name (or an earlier option) already claimed
        names = [p for p in pats if not any(ch in p for ch in "*?[")]
        for col in _match(header, names, option, src):
            claim(col, role)
        for col in _match(header, [p for p in pats if p not in names], option, src):
            roles.setdefault(col, role)

    left = [h for h in header if h not in roles]
    if left and unmapped == "error":
        raise ImportSourceError(
            f"{len(left)} column(s) not mapped to a role: {', '.join(left)}; map each with "
            "--metric, --param, --config, --json-column or --ignore, or set "
            "--unmapped auto|config|ignore",
            where=src,
        )
    for col in left:
        if unmapped == "auto":
            i = header.index(col)
            numeric = all(r[i] == "" or parse_number(r[i]) is not None for _, r in rows)
            roles[col] = "metric" if numeric and any(r[i] for _, r in rows) else "config"
        else:
            roles[col] = unmapped
    return roles


# -- wide ------------------------------------------------------------------------


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
    config: dict[str, Any] = field(default_factory=dict)
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

    header, rows = _read_rows(path, delimiter, encoding, progress)

    roles = _resolve_roles(
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
    run_events: list[dict[str, Any]] = []
    for n, (line, row) in enumerate(rows, 1):
        where = f"{src}:{line}"
        if study_column is not None:
            s = row[idx[study_column]]
            if study is not None and s != study:
                other_study_rows += 1
                continue
            check_name(s, "study", where=where, field=study_column, label="column")
        else:
            s = default_study
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
            stage_value = _int_cell(row[idx[stage]], where, stage, "a stage")
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
                try:
                    text, assumed = to_utc(cell, naive_tz=naive_tz)
                except ValueError:
                    raise ImportSourceError(
                        f"{cell!r} is not an ISO 8601 time (e.g. 2026-03-02 09:00:37)",
                        where=where,
                        field=time_column,
                        label="column",
                    ) from None
                assumed_tz += assumed
                ts = datetime.fromisoformat(text.replace("Z", "+00:00"))

        # metrics
        values = {}
        for c, i in metric_cols:
            cell = row[i]
            if cell == "":
                empty[c] += 1
                continue
            num = parse_number(cell)
            if num is None:
                raise ImportSourceError(
                    f"{cell!r} is not a number", where=where, field=c, label="column"
                )
            values[c] = num

        # attributes
        attrs: dict[str, Any] = {}
        for c, i in config_cols:
            cell = row[i]
            if cell == "":
                empty[c] += 1
                continue
            attrs[c] = _json_cell(cell, where, c) if c in json_set else cell
        if time_column is not None and ts is not None:
            attrs[time_column] = format_utc(ts)
        if sample_as == "run" and step is not None and row[idx[step]] != "":
            # the same flags serve both modes: in run mode the sample index is an attribute
            attrs[step] = _int_cell(row[idx[step]], where, step, "a step")

        # status and error
        row_status = None
        if status is not None and row[idx[status]] != "":
            row_status = _status_word(row[idx[status]], where, status)
        err = None
        if error_column is not None:
            err = _error_text(row[idx[error_column]], error_key, where, error_column)

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
            _row_events(run_events, s, case_id, run_id, ts, attrs, values, final_status, err)
        else:
            st = _int_cell(row[idx[step]], where, step, "a step")  # type: ignore[index]
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
        ev: dict[str, Any] = {"type": "case_created", "study": s, "case": case_id}
        if info["stage"]:
            ev["stage"] = info["stage"]
        if info["params"]:
            ev["params"] = info["params"]
        ev["id"] = stable_id("csv", s, "case", case_id)
        events.append(ev)
    events.extend(run_events)
    for r in runs.values():
        r.config = _collapse(r.per_step, len(r.steps))
        r.status = r.status or "completed"
        statuses[r.status] += 1
        events.extend(_step_run_events(r))

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


def _int_cell(cell: str, where: str, column: str | None, what: str) -> int:
    num = parse_number(cell)
    if not isinstance(num, int) or num < 0:
        raise ImportSourceError(
            f"{cell!r} is not {what} (an integer ≥ 0)", where=where, field=column, label="column"
        )
    return num


def _json_cell(cell: str, where: str, column: str) -> Any:
    try:
        return json.loads(cell)
    except ValueError as exc:
        raise ImportSourceError(
            f"not valid JSON ({exc})", where=where, field=column, label="column"
        ) from None


def _error_text(cell: str, key: str | None, where: str, column: str) -> str | None:
    if cell == "":
        return None
    if key is None:
        return cell
    obj = _json_cell(cell, where, column)
    if not isinstance(obj, dict):
        raise ImportSourceError(
            f"expected a JSON object to read {key!r} from, got {type(obj).__name__}",
            where=where,
            field=column,
            label="column",
        )
    value = obj.get(key)
    if value in (None, "", False):
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


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


def _row_events(
    out: list[dict[str, Any]],
    study: str,
    case: str,
    run: str,
    ts: datetime | None,
    config: dict[str, Any],
    values: dict[str, int | float],
    status: str,
    error: str | None,
) -> None:
    """The three events of a run that is one row (the hot path of a wide file)."""
    base = f"csv:{study}:run:{run}:"
    stamp = format_utc(ts) if ts is not None else None
    ev: dict[str, Any] = {"type": "run_started", "study": study, "case": case, "run": run}
    if config:
        ev["config"] = config
    ev["id"] = bounded_id(base + "started")
    if stamp:
        ev["ts"] = stamp
    out.append(ev)
    if values:
        m: dict[str, Any] = {
            "type": "metrics_recorded",
            "study": study,
            "run": run,
            "values": values,
            "id": bounded_id(base + "final"),
        }
        if stamp:
            m["ts"] = stamp
        out.append(m)
    fin: dict[str, Any] = {"type": "run_finished", "study": study, "run": run, "status": status}
    if error is not None:
        fin["error"] = error
    fin["id"] = bounded_id(base + "finished")
    if stamp:
        fin["ts"] = stamp
    out.append(fin)


def _step_run_events(r: _Run) -> list[dict[str, Any]]:
    """The events of a run whose rows are its steps (``sample_as="step"``)."""
    base = f"csv:{r.study}:run:{r.run}:"
    ev: dict[str, Any] = {"type": "run_started", "study": r.study, "case": r.case, "run": r.run}
    if r.config:
        ev["config"] = r.config
    ev["id"] = bounded_id(base + "started")
    if r.ts is not None:
        ev["ts"] = format_utc(r.ts)
    out = [ev]
    for st in sorted(r.steps):
        _, values, ts = r.steps[st]
        if values:
            m: dict[str, Any] = {
                "type": "metrics_recorded",
                "study": r.study,
                "run": r.run,
                "step": st,
                "values": values,
                "id": bounded_id(f"{base}step:{st}"),
            }
            if ts is not None:
                m["ts"] = format_utc(ts)
            out.append(m)
    fin: dict[str, Any] = {
        "type": "run_finished",
        "study": r.study,
        "run": r.run,
        "status": r.status or "completed",
        "id": bounded_id(base + "finished"),
    }
    if r.ts_end is not None:
        fin["ts"] = format_utc(r.ts_end)
    out.append(fin)
    return out


# -- long ------------------------------------------------------------------------


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
    header, rows = _read_rows(path, delimiter, encoding, progress)
    named = [
        (study_column, "--study-column"),
        (run, "--run"),
        (metric_column, "--metric-column"),
        (step, "--step"),
        (value_column, "--value-column"),
        *((c, "--case") for c in case),
    ]
    for col, option in named:
        _need(header, col, option, src)
    used = {c for c, _ in named if c is not None}
    long_roles = {c: opt[2:].replace("-column", "") for c, opt in named if c}
    ignored = set(_match(header, ignore, "--ignore", src))
    left = [h for h in header if h not in used and h not in ignored]
    if left and unmapped == "error":
        raise ImportSourceError(
            f"{len(left)} column(s) not mapped to a role: {', '.join(left)}; a long file has "
            "run, metric, step, value (and case) columns; pass --ignore or --unmapped ignore",
            where=src,
        )
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
        if i_study is not None:
            s = row[i_study]
            if study is not None and s != study:
                other_rows += 1
                continue
            check_name(s, "study", where=where, field=study_column, label="column")
        else:
            s = default_study
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
        num = parse_number(cell)
        if num is None:
            raise ImportSourceError(
                f"{cell!r} is not a number", where=where, field=value_column, label="column"
            )
        st = None
        if i_step is not None and row[i_step] != "":
            st = _int_cell(row[i_step], where, step, "a step")
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

    events: list[dict[str, Any]] = [study_created(s) for s in study_order]
    seen_cases: set[tuple[str, str]] = set()
    for (s, _), r in found.items():
        if (s, r["case"]) not in seen_cases:
            seen_cases.add((s, r["case"]))
            events.append(
                {
                    "type": "case_created",
                    "study": s,
                    "case": r["case"],
                    "id": stable_id("csv", s, "case", r["case"]),
                }
            )
    for (s, run_id), r in found.items():
        base = ("csv", s, "run", run_id)
        events.append(
            {
                "type": "run_started",
                "study": s,
                "case": r["case"],
                "run": run_id,
                "id": stable_id(*base, "started"),
            }
        )
        for st in sorted(r["steps"]):
            events.append(
                {
                    "type": "metrics_recorded",
                    "study": s,
                    "run": run_id,
                    "step": st,
                    "values": r["steps"][st],
                    "id": stable_id(*base, "step", st),
                }
            )
        if r["final"]:
            events.append(
                {
                    "type": "metrics_recorded",
                    "study": s,
                    "run": run_id,
                    "values": r["final"],
                    "id": stable_id(*base, "final"),
                }
            )
        if finish_status is not None:
            events.append(
                {
                    "type": "run_finished",
                    "study": s,
                    "run": run_id,
                    "status": finish_status,
                    "id": stable_id(*base, "finished"),
                }
            )
    summary = {
        "source": src,
        "format": "long",
        "studies": list(study_order),
        "rows": len(rows),
        "rows_of_other_studies": other_rows,
        "cases": len(seen_cases),
        "runs": len(found),
        "metric_values": values_n,
        "stepped_values": stepped_n,
        "superseded": superseded,
        "empty_cells_total": empty,
        "columns": {h: long_roles.get(h, "ignore") for h in header},
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)
