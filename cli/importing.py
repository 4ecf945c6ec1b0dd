"""How ``ledger import`` turns parsed sources into appends, and what it reports.

The importers (``ledger.importers``) parse a source into wire events with stable ids;
this module is the part between them and the log that every importer shares:

- **Parse everything first.** Every source of one command is parsed before anything is
  appended, so a bad row anywhere appends nothing and the error names ``file:line``.
- **One atomic append per source file**, in the order given (an ORFS folder of
  ``metadata*.json`` files is one append per file). Events shared by several files of
  one import (the study, a case) go with the first file that needs them; an id that two
  files give different content is refused before anything is appended.
- **An existing study keeps its own settings.** An importer's ``study_created`` for a
  study the ledger already holds is dropped: appending it could only be a duplicate (when
  identical) or be refused (when the study was created with other settings, e.g. by a
  runner, by ``ledger append`` or by another importer). When the dropped event carried
  settings that differ (objectives, config, description, tags) a ``warning:`` line says
  which were not recorded; the import itself goes on.
- **Progress on stderr only when stderr is a terminal**, so pipes and CI logs stay clean.

ORFS extras live here too, because they are choices about *what to record*, not about
parsing: ``--platform`` keeps the records of some platforms (one study per platform is
how ``ledger rank`` ranks within a platform), and ``--normalise-time`` records each
timing metric a second time in one unit, next to the original (``rank`` has no unit
option, so cross-platform ranking needs values that are already comparable).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ledger import Ledger
from ledger.codec import event_to_wire
from ledger.errors import IdempotencyConflict, LedgerError
from ledger.importers import ImportResult, ImportSourceError

__all__ = [
    "Source",
    "StderrProgress",
    "append_sources",
    "dedupe_across",
    "filter_platforms",
    "merge_summaries",
    "normalise_orfs_timing",
    "settle_studies",
    "summary_lines",
    "would_append",
]

STUDY_SETTINGS = ("objectives", "config", "description", "tags")


@dataclass
class Source:
    """One atomic append: the events parsed from one source file (or store)."""

    name: str
    events: list[dict[str, Any]]


# -- progress ------------------------------------------------------------------------


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


# -- several files of one import -------------------------------------------------------


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a == b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def dedupe_across(sources: Sequence[Source]) -> int:
    """Drop, in place, events an earlier source of the same import already carries.

    Returns how many were dropped. Raises ``ImportSourceError`` naming both files when two
    sources give one id different content (e.g. one run key recorded twice with other
    metrics): the import is refused before anything is appended.
    """
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    dropped = 0
    for src in sources:
        kept = []
        for ev in src.events:
            eid = ev.get("id")
            if eid is None:
                kept.append(ev)
                continue
            seen = first.get(eid)
            if seen is None:
                first[eid] = (src.name, ev)
                kept.append(ev)
            elif _same(seen[1], ev):
                dropped += 1
            else:
                what = ev.get("run") or ev.get("case") or ev.get("study")
                raise ImportSourceError(
                    f"{ev['type']} of {what!r} (id {eid!r}) is also in {seen[0]} with other "
                    "content; a run is keyed by platform, design and recording commit, so the "
                    "two files disagree about one run",
                    where=src.name,
                )
        src.events[:] = kept
    return dropped


def merge_summaries(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary for several files of one importer: counts added, lists joined.

    ``cases`` and ``events`` are not additive (files share cases); the caller overrides
    them with counts over the deduplicated events.
    """
    if len(summaries) == 1:
        return dict(summaries[0])
    out: dict[str, Any] = {}
    for s in summaries:
        for k, v in s.items():
            out[k] = _merge_value(out[k], v) if k in out else v
    return out


def _merge_value(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        return a if a == b else [a, b]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge_value(out[k], v) if k in out else v
        return dict(sorted(out.items()))
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return a if a == b else [a, b]


def recount(sources: Sequence[Source]) -> dict[str, int]:
    """Cases, runs and events over the (deduplicated) events of an import."""
    by_type: Counter[str] = Counter()
    for src in sources:
        by_type.update(ev["type"] for ev in src.events)
    return {
        "cases": by_type["case_created"] + by_type["eco_applied"],
        "runs": by_type["run_started"],
        "events": sum(by_type.values()),
    }


# -- ORFS: platforms and time units ----------------------------------------------------


def filter_platforms(sources: Sequence[Source], platforms: Sequence[str]) -> dict[str, Any]:
    """Keep, in place, only the cases (and their runs) of ``platforms``; say what was kept.

    Raises ``ImportSourceError`` for a platform no record of the source names.
    """
    wanted = set(platforms)
    seen_platforms: set[str] = set()
    kept_cases: set[str] = set()
    kept_runs: set[str] = set()
    left_out_runs = 0
    values = stepped = 0
    for src in sources:
        kept = []
        for ev in src.events:
            tag = ev["type"]
            if tag == "case_created":
                platform = (ev.get("params") or {}).get("platform")
                seen_platforms.add(str(platform))
                if platform in wanted:
                    kept_cases.add(ev["case"])
                    kept.append(ev)
            elif tag == "run_started":
                if ev["case"] in kept_cases:
                    kept_runs.add(ev["run"])
                    kept.append(ev)
                else:
                    left_out_runs += 1
            elif "run" in ev:
                if ev["run"] in kept_runs:
                    kept.append(ev)
                    if tag == "metrics_recorded":
                        if ev.get("step") is None:
                            values += len(ev["values"])
                        else:
                            stepped += len(ev["values"])
            else:
                kept.append(ev)
        src.events[:] = kept
    missing = sorted(wanted - seen_platforms)
    if missing:
        raise ImportSourceError(
            f"no record of platform {', '.join(map(repr, missing))}; the source's platforms "
            f"are: {', '.join(sorted(seen_platforms)) or 'none'}",
            where=sources[0].name if len(sources) == 1 else None,
        )
    return {
        "platforms": sorted(wanted),
        "cases": len(kept_cases),
        "runs": len(kept_runs),
        "runs_left_out": left_out_runs,
        "metric_values": values,
        "stepped_values": stepped,
    }


def unit_suffix(unit: str) -> str:
    """``"1ns"``/``"ns"`` -> ``"ns"``, ``"10ps"`` -> ``"10ps"``: the normalised names' suffix."""
    from projections.checks import parse_time_unit

    mult, _ = parse_time_unit(unit)
    word = unit.strip().lstrip("0123456789.").strip()
    return word if mult == 1 else f"{mult}{word}"


def normalise_orfs_timing(sources: Sequence[Source], to: str) -> dict[str, Any]:
    """Add, in place, ``<metric>__<unit>`` for every timing metric of every run, in ``to``.

    The original values stay as recorded. Each run's unit is read from
    ``run__flow__platform__time_units`` (older: ``...__timing_units``) or assumed from its
    platform (asap7 and gf12 report ps, the others ns), and the run's config records
    which, under ``time_unit``: ``{"unit", "assumed", "note", "normalised_to"}``. Which
    metrics are timing is ``projections.checks.is_timing_metric``. Returns the summary
    part. Raises ``ImportSourceError`` when a normalised name is already a metric.
    """
    from projections.checks import is_timing_metric, normalise_timing, time_unit_of

    canonical = "1" + to.strip() if to.strip()[:1].isalpha() else to.strip()
    suffix = "__" + unit_suffix(to)
    params: dict[str, dict[str, Any]] = {}
    attrs_of: dict[str, dict[str, Any]] = {}
    timing: dict[str, bool] = {}
    added = 0
    read = assumed = 0
    assumed_by_platform: Counter[str] = Counter()
    for src in sources:
        for ev in src.events:
            tag = ev["type"]
            if tag == "case_created":
                params[ev["case"]] = ev.get("params") or {}
            elif tag == "run_started":
                config = ev.setdefault("config", {})
                attrs = {**params.get(ev["case"], {}), **config}
                tu = time_unit_of(attrs)
                attrs_of[ev["run"]] = attrs
                config["time_unit"] = {
                    "unit": tu.unit,
                    "assumed": tu.assumed,
                    "note": tu.note,
                    "normalised_to": canonical,
                }
                if tu.assumed:
                    assumed += 1
                    assumed_by_platform[str(attrs.get("platform", "?"))] += 1
                else:
                    read += 1
            elif tag == "metrics_recorded":
                values = ev["values"]
                picked = {}
                for k, v in values.items():
                    t = timing.get(k)
                    if t is None:
                        t = timing[k] = is_timing_metric(k) and not k.endswith(suffix)
                    if t:
                        picked[k] = v
                if not picked:
                    continue
                run = ev["run"]
                converted, _ = normalise_timing(
                    {run: picked}, {run: attrs_of.get(run, {})}, to=canonical
                )
                for k, v in converted[run].items():
                    name = k + suffix
                    if name in values:
                        raise ImportSourceError(
                            f"run {run!r} already has a metric {name!r}; --normalise-time would "
                            "record the normalised value under that name",
                            where=src.name,
                        )
                    values[name] = v
                    added += 1
    return {
        "to": canonical,
        "suffix": suffix,
        "values_added": added,
        "runs_unit_read": read,
        "runs_unit_assumed": assumed,
        "assumed_by_platform": dict(sorted(assumed_by_platform.items())),
    }


# -- the ledger side -------------------------------------------------------------------


def _setting(value: Any) -> Any:
    return value if value not in (None, [], {}, "") else None


def settle_studies(ledger: Ledger | None, sources: Sequence[Source]) -> list[dict[str, Any]]:
    """Drop, in place, ``study_created`` events of studies the ledger already holds.

    Returns one note per such study: ``{"study", "seq", "not_recorded": {setting: value}}``
    where ``not_recorded`` lists the source's settings that differ from the study's (empty
    when they agree). With no ledger (a dry run on a missing one) nothing is dropped.
    """
    notes: list[dict[str, Any]] = []
    if ledger is None:
        return notes
    known: dict[str, bool] = {}
    for src in sources:
        kept = []
        for ev in src.events:
            if ev["type"] != "study_created":
                kept.append(ev)
                continue
            study = ev["study"]
            if study not in known:
                known[study] = ledger.has_study(study)
                if known[study]:
                    notes.append(_study_note(ledger, ev))
            if not known[study]:
                kept.append(ev)
        src.events[:] = kept
    return notes


def _study_note(ledger: Ledger, ev: dict[str, Any]) -> dict[str, Any]:
    study = ev["study"]
    env = next(iter(ledger.read(study=study, types=["study_created"])), None)
    stored = event_to_wire(env) if env is not None else {}
    differ = {
        k: ev[k]
        for k in STUDY_SETTINGS
        if _setting(ev.get(k)) is not None and _setting(ev.get(k)) != _setting(stored.get(k))
    }
    return {"study": study, "seq": stored.get("seq"), "not_recorded": differ}


class _Wheres(Sequence[str]):
    """Where an event came from, computed only when the ledger asks (on an error)."""

    def __init__(self, name: str, events: Sequence[dict[str, Any]]) -> None:
        self.name = name
        self.events = events

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i: Any) -> Any:
        ev = self.events[i]
        return f"{self.name} (event {ev.get('id')})"


def append_sources(
    ledger: Ledger,
    sources: Sequence[Source],
    *,
    redact: bool = True,
    progress: StderrProgress | None = None,
) -> list[dict[str, Any]]:
    """Append each source as one atomic batch, in order; a result per source.

    On a refusal nothing of that source is appended; the ``LedgerError`` raised names it
    and the sources appended before it (those stay: re-running the import after a fix
    appends only what is missing, since every id comes from the source).
    """
    results: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        if progress is not None:
            progress.status(f"appending {len(src.events):,} events from {src.name}")
        try:
            res = ledger.append(
                src.events, source=src.name, redact=redact, wheres=_Wheres(src.name, src.events)
            )
        except LedgerError as exc:
            raise LedgerError(_refusal(exc, src, sources[:i])) from None
        results.append(
            {
                "source": src.name,
                "events": len(src.events),
                "appended": res.appended,
                "duplicates": res.duplicates,
                "head_seq": res.head_seq,
                "head_hash": res.head_hash,
                "redacted": list(res.redacted),
            }
        )
    return results


def _refusal(exc: LedgerError, src: Source, before: Sequence[Source]) -> str:
    text = f"{exc}; nothing of {src.name} was appended"
    if isinstance(exc, IdempotencyConflict):
        text += (
            " (the source changed since it was imported, or it was imported with other "
            "options such as --normalise-time; import it into another --study to keep both)"
        )
    if before:
        names = ", ".join(s.name for s in before)
        text += f"; appended before it: {names}"
    return text


# -- reporting -------------------------------------------------------------------------


def would_append(sources: Iterable[Source]) -> dict[str, Any]:
    """Events per type and per study that a dry run would hand to the ledger."""
    by_type: Counter[str] = Counter()
    by_study: Counter[str] = Counter()
    batches = 0
    for src in sources:
        batches += 1
        for ev in src.events:
            by_type[ev["type"]] += 1
            by_study[ev["study"]] += 1
    return {
        "batches": batches,
        "events": sum(by_type.values()),
        "by_type": {t: by_type[t] for t in _TYPE_ORDER if by_type[t]},
        "by_study": dict(sorted(by_study.items())),
    }


_TYPE_ORDER = (
    "study_created",
    "case_created",
    "eco_applied",
    "run_started",
    "metrics_recorded",
    "artifact_recorded",
    "run_finished",
    "run_invalidated",
    "selection_recorded",
)


def _plain(value: Any, nested: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        text = " ".join(f"{k}={_plain(v, True)}" for k, v in value.items()) or "-"
        return f"({text})" if nested and value else text
    if isinstance(value, list):
        text = ", ".join(_plain(v, True) for v in value) or "-"
        return f"[{text}]" if nested and value else text
    return str(value)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The importer's summary for people: ``key: value``, in the importer's order."""
    width = max((len(k) for k in summary), default=0)
    return [f"{k + ':':<{width + 1}} {_plain(v)}" for k, v in summary.items()]


def parse_with(progress: StderrProgress, read: Callable[[Any], ImportResult]) -> ImportResult:
    """Run one reader with the progress line, and clear the line whatever happens."""
    try:
        return read(progress)
    finally:
        progress.close()


@dataclass
class Outcome:
    """What one ``ledger import`` did (or would do), for both renderings."""

    summary: dict[str, Any]
    dry_run: bool
    studies_existing: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dry_run": self.dry_run, "summary": self.summary}
        out["studies_existing"] = self.studies_existing
        if self.dry_run:
            out["would_append"] = self.plan
            return out
        out["files"] = self.files
        out["appended"] = sum(f["appended"] for f in self.files)
        out["duplicates"] = sum(f["duplicates"] for f in self.files)
        last = self.files[-1] if self.files else None
        out["head_seq"] = last["head_seq"] if last else None
        out["head_hash"] = last["head_hash"] if last else None
        out["redacted"] = [w for f in self.files for w in f["redacted"]]
        return out
