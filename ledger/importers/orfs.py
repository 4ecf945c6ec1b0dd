"""OpenROAD-flow-scripts METRICS2.1 results as ledger events.

Sources: ``metadata*.json`` files (a flow's METRICS2.1 dict), folders of them (searched
recursively, in code-point order of their relative paths), and JSON Lines bundles whose
records are ``{"platform", "design", "commit", "date", "metrics"}`` (the shape of
``metadata-history.jsonl``). A ``.json`` file may also hold one such record.

Mapping (the data README explains why):

- a case per platform/design (``by_variant=True``: per platform/design/variant), with
  those as params; a run per record, keyed by platform, design and the ORFS commit that
  recorded it, because ``run__flow__uuid`` is not unique. A bare METRICS2.1 file has no
  recording commit, so its run is keyed by a digest of its content instead;
- the record's date, converted to UTC, is the events' ``ts`` and ``config["date"]``;
- numbers are final metric values; ``name__iter:N`` keys are a stepped series of
  ``name`` at step N; durations (``"0:20.02"``, ``"0:03:37.100000"``, ``"1:02:03"``)
  become seconds under their own name;
- everything else is kept verbatim in the run's ``config`` under its source key: the
  ``run__flow__*`` attributes (tool versions, commits, units, variant, uuid) and the
  values that are not numbers (``"N/A"``, ``"NoLimit"``, ``"95%"``, lists...). Those are
  never turned into numbers; the summary counts them by kind. Sentinels such as
  ``1e+30`` are numbers and stay numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .common import (
    ImportResult,
    ImportSourceError,
    Progress,
    Ticker,
    check_name,
    stable_id,
    study_created,
    to_utc,
)

__all__ = ["DEFAULT_STUDY", "parse_duration", "read_orfs", "value_kind"]

DEFAULT_STUDY = "orfs"
_ITER = re.compile(r"__iter:(\d+)$", re.ASCII)
_DURATION = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", re.ASCII)
_PERCENT = re.compile(r"[+-]?\d+(?:\.\d+)?\s*%", re.ASCII)
_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_UNIT = re.compile(r"[+-]?\d*\.?\d+\s*[A-Za-z]{1,3}", re.ASCII)


def parse_duration(text: str) -> float | None:
    """``[h:]mm:ss[.frac]`` (GNU ``time``'s elapsed format) as seconds, else ``None``.

    Two fields are minutes and seconds, three are hours, minutes and seconds; a seconds
    or minutes field of 60 or more (after an hours field) is not a duration.
    """
    m = _DURATION.fullmatch(text)
    if m is None:
        return None
    hours, minutes, seconds = m.group(1), int(m.group(2)), float(m.group(3))
    if seconds >= 60 or (hours is not None and minutes >= 60):
        return None
    return (int(hours) * 3600 if hours else 0) + minutes * 60 + seconds


def value_kind(value: Any) -> str:
    """The summary's name for a value that is not a metric."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if not isinstance(value, str):
        return type(value).__name__
    if value == "N/A":
        return "N/A"
    if value == "NoLimit":
        return "NoLimit"
    if _PERCENT.fullmatch(value):
        return "percent"
    if _NUMERIC.fullmatch(value):
        return "numeric_string"
    if _UNIT.fullmatch(value):
        return "unit"
    return "text"


# -- sources ---------------------------------------------------------------------


def metadata_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files ``read_orfs`` reads, one append each: folders searched recursively for
    ``metadata*.json`` in code-point order of their relative paths."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [p for p in path.rglob("metadata*.json") if p.is_file()]
            found.sort(key=lambda p: p.relative_to(path).as_posix())
            if not found:
                raise ImportSourceError(
                    "no metadata*.json file in this folder (searched recursively)",
                    where=str(path),
                )
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise ImportSourceError("no such file or folder", where=str(path))
    return out


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, a JSON object) for every record of one source file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportSourceError(f"cannot read: {exc.strerror}", where=str(path)) from None
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield f"{path}:{lineno}", _loads(line, f"{path}:{lineno}")
    else:
        yield f"{path}:1", _loads(data, f"{path}:1")


def _loads(text: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"invalid JSON: {exc}", where=where) from None
    if not isinstance(obj, dict):
        raise ImportSourceError(
            f"expected a JSON object (a METRICS2.1 dict or a bundle record), got "
            f"{type(obj).__name__}",
            where=where,
        )
    return obj


def _text_field(obj: dict[str, Any], key: str, where: str, hint: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        got = "missing" if value is None else f"not a non-empty string ({value!r})"
        raise ImportSourceError(f"{got}; {hint}", where=where, field=key)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal content, NaN included (only computed when a run key is seen twice)."""
    return a == b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _digest(metrics: dict[str, Any]) -> str:
    canon = json.dumps(metrics, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.blake2b(canon.encode("utf-8"), digest_size=8).hexdigest()


# -- the import ------------------------------------------------------------------


def read_orfs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    study: str = DEFAULT_STUDY,
    by_variant: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Parse every source in ``paths`` into one batch of events, or raise.

    ``by_variant`` makes a case per platform/design/variant (``run__flow__variant``,
    ``base`` when absent) instead of per platform/design. ``progress(done, total)``
    counts records. The summary reports runs, cases, metric values, durations converted,
    stepped values, values kept as attributes by kind (``skipped``) and identical
    records seen twice (``duplicate_records``, imported once).

    Raises ``ImportSourceError`` naming ``file:line`` (and the field) for unreadable
    files, invalid JSON, a record without platform/design/commit/metrics, a date that is
    not ISO 8601, or one run key recorded twice with different content.
    """
    check_name(study, "study", where=None)
    files = metadata_files(paths)
    ticker = Ticker(progress, None, every=64)

    cases: dict[str, dict[str, Any]] = {}
    runs: list[list[dict[str, Any]]] = []
    seen: dict[str, tuple[str, tuple[Any, dict[str, Any]]]] = {}  # run id -> (where, content)
    skipped: Counter[str] = Counter()
    counts = Counter[str]()
    assumed_utc = 0
    n = 0

    for path in files:
        for where, obj in _records(path):
            n += 1
            ticker.tick(n)
            if "metrics" in obj:
                metrics = obj["metrics"]
                if not isinstance(metrics, dict):
                    raise ImportSourceError(
                        f"expected an object, got {type(metrics).__name__}",
                        where=where,
                        field="metrics",
                    )
                platform = _text_field(obj, "platform", where, "a bundle record names it")
                design = _text_field(obj, "design", where, "a bundle record names it")
                commit = _text_field(obj, "commit", where, "the recording ORFS commit keys the run")
                date = obj.get("date")
                key = commit
            else:
                metrics = obj
                hint = "a METRICS2.1 file names its platform and design"
                platform = _text_field(obj, "run__flow__platform", where, hint)
                design = _text_field(obj, "run__flow__design", where, hint)
                commit = None
                date = None
                key = "sha:" + _digest(metrics)

            variant = metrics.get("run__flow__variant")
            variant = variant if isinstance(variant, str) and variant else "base"
            case = f"{platform}/{design}/{variant}" if by_variant else f"{platform}/{design}"
            check_name(case, "case", where=where, field="platform")
            run = check_name(f"{platform}/{design}@{key}", "run", where=where, field="commit")

            ts = None
            if date is not None:
                if not isinstance(date, str):
                    raise ImportSourceError(
                        f"expected an ISO 8601 string, got {date!r}", where=where, field="date"
                    )
                try:
                    ts, assumed = to_utc(date)
                except ValueError:
                    raise ImportSourceError(
                        f"{date!r} is not an ISO 8601 time (e.g. 2021-04-24T10:25:33-07:00)",
                        where=where,
                        field="date",
                    ) from None
                assumed_utc += assumed

            content = (date, metrics)
            if run in seen:
                first, first_content = seen[run]
                if _same(first_content, content):
                    counts["duplicate_records"] += 1
                    continue
                raise ImportSourceError(
                    f"run {run!r} is also recorded at {first} with different content; a run "
                    "is keyed by platform, design and recording commit",
                    where=where,
                    field="commit",
                )
            seen[run] = (where, content)

            if case not in cases:
                params = {"platform": platform, "design": design}
                if by_variant:
                    params["variant"] = variant
                cases[case] = {
                    "type": "case_created",
                    "study": study,
                    "case": case,
                    "params": params,
                    "id": stable_id("orfs", study, "case", case),
                }
            runs.append(_run_events(study, case, run, commit, ts, metrics, skipped, counts))

    ticker.done(n)
    events: list[dict[str, Any]] = [study_created(study)]
    events.extend(cases.values())
    for block in runs:
        events.extend(block)
    summary = {
        "source": [str(p) for p in files],
        "study": study,
        "records": n,
        "runs": len(runs),
        "cases": len(cases),
        "metric_values": counts["metric_values"],
        "durations_converted": counts["durations"],
        "stepped_values": counts["stepped_values"],
        "attributes": counts["attributes"],
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "duplicate_records": counts["duplicate_records"],
        "dates_assumed_utc": assumed_utc,
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)


def _run_events(
    study: str,
    case: str,
    run: str,
    commit: str | None,
    ts: str | None,
    metrics: dict[str, Any],
    skipped: Counter[str],
    counts: Counter[str],
) -> list[dict[str, Any]]:
    final: dict[str, int | float] = {}
    steps: dict[int, dict[str, int | float]] = {}
    config: dict[str, Any] = {}
    if commit is not None:
        config["commit"] = commit
    if ts is not None:
        config["date"] = ts

    attributes = stepped = durations = 0
    for key, value in metrics.items():
        kind = type(value)  # exact types: a bool is not a number here
        if key.startswith("run__flow__"):
            config[key] = value
            attributes += 1
        elif kind is not float and kind is not int:
            if kind is str and (seconds := parse_duration(value)) is not None:
                final[key] = seconds
                durations += 1
            else:
                config[key] = value
                skipped[value_kind(value)] += 1
        elif "__iter:" in key and (m := _ITER.search(key)) is not None:
            steps.setdefault(int(m.group(1)), {})[key[: m.start()]] = value
            stepped += 1
        else:
            final[key] = value
    counts["attributes"] += attributes
    counts["stepped_values"] += stepped
    counts["durations"] += durations
    counts["metric_values"] += len(final)

    base = ("orfs", study, "run", run)
    stamp = {"ts": ts} if ts is not None else {}
    out: list[dict[str, Any]] = [
        {
            "type": "run_started",
            "study": study,
            "case": case,
            "run": run,
            "config": config,
            "id": stable_id(*base, "started"),
            **stamp,
        }
    ]
    for step in sorted(steps):
        out.append(
            {
                "type": "metrics_recorded",
                "study": study,
                "run": run,
                "step": step,
                "values": steps[step],
                "id": stable_id(*base, "step", step),
                **stamp,
            }
        )
    if final:
        out.append(
            {
                "type": "metrics_recorded",
                "study": study,
                "run": run,
                "values": final,
                "id": stable_id(*base, "final"),
                **stamp,
            }
        )
    out.append(
        {
            "type": "run_finished",
            "study": study,
            "run": run,
            "status": "completed",
            "id": stable_id(*base, "finished"),
            **stamp,
        }
    )
    return out
