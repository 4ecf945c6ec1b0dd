"""How parsed sources become appends, and what an import reports: the part between the
importers and the log that every importer shares.

The importers (``ledger.importers``) parse a source into wire events with stable ids;
``import_sources`` hands them to the ledger:

- **Parse everything first.** Every source of one import is parsed before anything is
  appended, so a bad row anywhere appends nothing and the error names ``file:line``.
- **One atomic append per source file**, in the order given (an ORFS folder of
  ``metadata*.json`` files is one append per file). Events shared by several files of
  one import (the study, a case) go with the first file that needs them
  (``dedupe_across``); an id that two files give different content is refused before
  anything is appended.
- **An existing study keeps its own settings.** An importer's ``study_created`` for a
  study the ledger already holds is dropped: appending it could only be a duplicate (when
  identical) or be refused (when the study was created with other settings, e.g. by a
  runner, by ``ledger append`` or by another importer). The ``Outcome`` lists, per such
  study, the settings that differ (objectives, config, description, tags) and were not
  recorded; the import itself goes on.
- **A dry run** reads the ledger (when there is one) to settle the studies and reports
  what it would append; it never writes.

Progress is the caller's: ``import_sources`` and the multi-file readers take a
``ProgressFactory`` (``factory(label, unit)`` -> a ``ProgressLine``), which the CLI
fills with a line on stderr shown only on a terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ledger.codec import event_to_wire
from ledger.errors import IdempotencyConflict, LedgerError

from .common import ImportSourceError

if TYPE_CHECKING:
    from ledger import Ledger

__all__ = [
    "Outcome",
    "ProgressFactory",
    "ProgressLine",
    "Source",
    "append_sources",
    "dedupe_across",
    "import_sources",
    "merge_summaries",
    "recount",
    "settle_studies",
    "would_append",
]

STUDY_SETTINGS = ("objectives", "config", "description", "tags")


@dataclass
class Source:
    """One atomic append: the events parsed from one source file (or store)."""

    name: str
    events: list[dict[str, Any]]


class ProgressLine(Protocol):
    """A progress display: ``line(done, total)`` as an importer's ``progress``, a
    ``status`` text, and ``close`` when done (whatever happened)."""

    def __call__(self, done: int, total: int | None) -> None: ...

    def status(self, text: str) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str, str], ProgressLine]
"""``factory(label, unit)`` -> a fresh ``ProgressLine`` (``cli.progress.StderrProgress``)."""


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
    progress: ProgressLine | None = None,
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


# -- one import --------------------------------------------------------------------------


def import_sources(
    ledger: Ledger | None,
    sources: Sequence[Source],
    summary: dict[str, Any],
    *,
    dry_run: bool,
    redact: bool = True,
    progress: ProgressFactory | None = None,
) -> Outcome:
    """Settle existing studies, then append each source (or, with ``dry_run``, plan).

    ``ledger`` may be None only for a dry run (the ledger does not exist yet). Raises
    what ``append_sources`` raises.
    """
    notes = settle_studies(ledger, sources)
    if dry_run:
        return Outcome(summary, True, notes, plan=would_append(sources))
    if ledger is None:
        raise LedgerError("an import that appends needs a ledger")
    line = progress("append", "events") if progress is not None else None
    try:
        files = append_sources(ledger, sources, redact=redact, progress=line)
    finally:
        if line is not None:
            line.close()
    return Outcome(summary, False, notes, files)


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
