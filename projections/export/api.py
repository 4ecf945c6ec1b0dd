"""``export_study`` / ``export_all``: a study's projections at one seq, as a snapshot folder.

One call reads the study (through the study index: only its own events), selects and
redacts its records once (:func:`~projections.export.tables.collect`), builds the
tables column-wise, writes the requested formats into a snapshot folder that is
complete or absent, and records the export in the ledger's export journal — a table
outside the event log, so exporting never moves the head. It returns the manifest, so a
runner can export at the end of a study and keep the hashes.

Files per format (``manifest.json`` always):

==========  ===================================================
``json``    ``study.json``
``csv``     ``cases.csv``, ``runs.csv``, ``metrics.csv``
``parquet`` ``cases.parquet``, ``runs.parquet``, ``metrics.parquet``
``xlsx``    ``report.xlsx``
==========  ===================================================

The bytes depend only on the ledger prefix up to ``as_of``, the options, and the
versions the manifest records. The journal entry holds the wall-clock time; the files
never do.

Errors (``LedgerError``): ``UnknownStudy``, ``AsOfError``, ``ProjectionError`` (the
study did not exist yet at ``as_of``), ``SelectionError`` (``--where``/``--fields``),
``ExportError`` and ``UnsafePathError`` (formats, folders, writing).
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ledger import Ledger
from projections.base import resolve_as_of
from projections.export.manifest import MANIFEST_NAME, build_manifest, read_manifest
from projections.export.safety import ExportError, assign_folder_names
from projections.export.select import FieldSpec, Where, parse_fields, parse_where
from projections.export.snapshot import write_snapshot

if TYPE_CHECKING:
    from projections.export.hashing_sink import HashingFile

__all__ = [
    "ALL_FORMATS",
    "ExportJournalWarning",
    "ExportManifest",
    "Progress",
    "export_all",
    "export_study",
    "files_for",
    "list_exports",
    "normalise_formats",
]

ALL_FORMATS = ("json", "csv", "parquet", "xlsx")
JOURNAL = "exports"

#: ``progress(done, total, label)``: called before each step (loading a study, writing a
#: file) and once more at the end with ``done == total``.
Progress = Callable[[int, int, str], None]


class ExportJournalWarning(UserWarning):
    """The export was written but could not be journalled (the ledger is read-only)."""


class ExportManifest(dict):
    """The manifest as written to ``manifest.json`` (this dict's items), plus where the
    snapshot landed (``path``) and the manifest file's SHA-256 (``sha256``)."""

    path: Path
    sha256: str


def normalise_formats(formats: str | Iterable[str] | None) -> tuple[str, ...]:
    """``{"csv", "all"}`` -> ``("json", "csv", "parquet", "xlsx")``: known names in a
    fixed order, ``all`` for every one. Raises ``ExportError`` for anything else."""
    if formats is None:
        return ALL_FORMATS
    items = [formats] if isinstance(formats, str) else list(formats)
    wanted: set[str] = set()
    for f in items:
        name = str(f).strip().lower()
        if name == "all":
            wanted.update(ALL_FORMATS)
        elif name in ALL_FORMATS:
            wanted.add(name)
        else:
            raise ExportError(f"unknown export format {f!r}; use {', '.join(ALL_FORMATS)} or all")
    if not wanted:
        raise ExportError(f"no export format given; use {', '.join(ALL_FORMATS)} or all")
    return tuple(f for f in ALL_FORMATS if f in wanted)


def files_for(formats: Sequence[str]) -> list[str]:
    """The file names the formats write (the manifest aside), in writing order."""
    names: list[str] = []
    if "json" in formats:
        names.append("study.json")
    for fmt in ("csv", "parquet"):
        if fmt in formats:
            names += [f"{t}.{fmt}" for t in ("cases", "runs", "metrics")]
    if "xlsx" in formats:
        names.append("report.xlsx")
    return names


class _Steps:
    """Counts steps for a ``Progress`` callback across one or several studies."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, label: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, label)
        self.done += 1

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total, "done")


def export_study(
    ledger: Ledger,
    study: str,
    out: str | os.PathLike[str],
    formats: str | Iterable[str] = ALL_FORMATS,
    as_of: int | None = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | FieldSpec | None = None,
    where: Sequence[str] | Where | None = None,
    redact: bool = True,
    extra_redact: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    folder: str | None = None,
    journal: bool = True,
    csv_raw: bool = False,
) -> ExportManifest:
    """Export ``study`` at ``as_of`` (default: the head) into ``out/<folder>``.

    ``folder`` defaults to the study's safe name (``assign_folder_names``). ``fields``
    and ``where`` take the ``--fields``/``--where`` texts (see
    :mod:`projections.export.select`). ``redact=False`` writes configs and params as
    stored (the ledger itself redacts at append unless told not to); ``extra_redact``
    adds fnmatch patterns on keys and paths. ``csv_raw`` writes CSV text cells as they
    are, without the ``'`` that keeps a spreadsheet from running one as a formula (for
    programs that join the CSV with other data; the manifest records it; the workbook
    is always protected). Returns the manifest.

    Raises ``UnknownStudy``, ``AsOfError``, ``ProjectionError``, ``SelectionError``,
    ``ExportError``, ``UnsafePathError`` — all before the snapshot's final name is
    touched.
    """
    fmts = normalise_formats(formats)
    where_ = parse_where(where)
    fields_ = parse_fields(fields)
    limit = resolve_as_of(ledger, as_of)
    if folder is None:
        folder = assign_folder_names([study])[study]
    steps = _Steps(progress, 1 + len(files_for(fmts)))
    options = _Options(fmts, fields_, where_, redact, tuple(extra_redact), csv_raw)
    result = _export_one(ledger, study, out, folder, limit, options, steps)
    if journal:
        _journal(ledger, result, options)
    steps.finish()
    return result


def export_all(
    ledger: Ledger,
    out: str | os.PathLike[str],
    formats: str | Iterable[str] = ALL_FORMATS,
    as_of: int | None = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | FieldSpec | None = None,
    where: Sequence[str] | Where | None = None,
    redact: bool = True,
    extra_redact: Sequence[str] = (),
    progress: Progress | None = None,
    *,
    studies: Sequence[str] | None = None,
    journal: bool = True,
    csv_raw: bool = False,
) -> dict[str, ExportManifest]:
    """Export every study that exists at ``as_of`` (or ``studies``), one folder each.

    Folder names come from ``assign_folder_names`` over the studies exported together,
    so two whose safe names collide both get a short hash suffix. Returns study ->
    manifest, in study order. Raises as :func:`export_study`; studies already written
    stay written when a later one fails.
    """
    fmts = normalise_formats(formats)
    where_ = parse_where(where)
    fields_ = parse_fields(fields)
    limit = resolve_as_of(ledger, as_of)
    if studies is None:
        names = [s for s in ledger.studies() if _created_by(ledger, s, limit)]
    else:
        from projections.base import UnknownStudy

        names = sorted(set(studies))
        for s in names:
            if not ledger.has_study(s):
                raise UnknownStudy(s, ledger.studies())
    folders = assign_folder_names(names)
    steps = _Steps(progress, len(names) * (1 + len(files_for(fmts))))
    options = _Options(fmts, fields_, where_, redact, tuple(extra_redact), csv_raw)
    results: dict[str, ExportManifest] = {}
    for s in names:
        results[s] = _export_one(ledger, s, out, folders[s], limit, options, steps)
        if journal:
            _journal(ledger, results[s], options)
    steps.finish()
    return results


class _Options(NamedTuple):
    """What one export call asks, the same for every study it writes."""

    formats: tuple[str, ...]
    fields: FieldSpec
    where: Where
    redact: bool
    extra_redact: tuple[str, ...]
    csv_raw: bool


def _created_by(ledger: Ledger, study: str, limit: int) -> bool:
    created = next(iter(ledger.read(0, limit, study=study, types=["study_created"])), None)
    return created is not None


def _load(ledger: Ledger, study: str, limit: int, on_frame: Any = None) -> Any:
    """``load_study``, using checkpoints only when the ledger holds no other study;
    ``on_frame`` sees every frame of the study read (the metric events' times).

    A checkpoint holds every study's state; restoring one to export a single study
    would make memory follow the whole ledger. Replaying the study's own events (read
    through the study index) keeps it to the exported study's columns.
    """
    from projections.study import load_study

    only_this = ledger.studies() == [study]
    return load_study(ledger, study, limit, checkpoints=only_this, on_frame=on_frame)


def _release_series(view: Any) -> None:
    """Drop the raw metric series of a view this export built and owns.

    Once :func:`collect` has taken the values in force, the projection's raw columns
    (every recorded value, superseded ones included) are dead weight; freeing them
    before the writers run keeps peak memory to one copy of the series. What the
    rankings and ``study.json`` still read — the final values — stays.
    """
    from projections.metrics import ColumnChunks, MetricsProjection

    metrics = getattr(view, "metrics", None)
    if isinstance(metrics, MetricsProjection):
        metrics.stepped = ColumnChunks()


def _check_folder(out: str | os.PathLike[str], folder: str, study: str) -> None:
    """Refuse to replace another study's snapshot (names that differ only in case meet on
    macOS and Windows when studies are exported separately)."""
    existing = Path(out) / folder
    if not (existing / MANIFEST_NAME).is_file() or existing.is_symlink():
        return
    try:
        other = read_manifest(existing).get("study")
    except ExportError:
        return  # write_snapshot decides what to do with a damaged folder
    if other is not None and other != study:
        raise ExportError(
            f"{os.fspath(existing)} holds the export of study {other!r}, not {study!r}; "
            "export both with --all-studies (colliding names get distinct folders) or "
            "choose another --out"
        )


def _event_time(ledger: Ledger, seq: int) -> int | None:
    """The time (µs) of event ``seq``: when the log reached the export's as-of seq."""
    event = next(iter(ledger.read(seq - 1, seq)), None) if seq > 0 else None
    return None if event is None else event.ts


def _export_one(
    ledger: Ledger,
    study: str,
    out: str | os.PathLike[str],
    folder: str,
    limit: int,
    options: _Options,
    steps: _Steps,
) -> ExportManifest:
    from projections.export.csv_writer import write_csv
    from projections.export.hashing_sink import write_hashed
    from projections.export.json_writer import write_json
    from projections.export.parquet_writer import write_parquet
    from projections.export.report import write_report
    from projections.export.study_json import study_document
    from projections.export.tables import (
        EventTimes,
        Redactor,
        cases_table,
        collect,
        csv_ready,
        metrics_table,
        runs_table,
    )

    fmts, fields, where = options.formats, options.fields, options.where
    steps(f"{study}: reading")
    times = EventTimes()  # taken from the read that builds the view: one read of the log
    view = _load(ledger, study, limit, times)
    head_hash = ledger.hash_at(limit)
    redactor = Redactor(options.redact, options.extra_redact)
    rec = collect(
        view,
        where=where,
        redactor=redactor,
        event_times=lambda: times.of(study),
    )
    tables = {"cases": cases_table(rec), "runs": runs_table(rec), "metrics": metrics_table(rec)}
    _release_series(view)
    fields.check({name: t.column_names for name, t in tables.items()})
    tables = {name: fields.apply(name, t) for name, t in tables.items()}
    _check_folder(out, folder, study)
    meta = {"head_hash": head_hash, "as_of_ts": _event_time(ledger, limit)}
    neutralise = not options.csv_raw

    def step(label: str, write: Callable[[Path], Any]) -> Callable[[Path], Any]:
        def run(path: Path) -> Any:
            steps(f"{study}: {label}")
            return write(path)

        return run

    # JSON, CSV and Parquet are hashed while they are written (write_hashed), so the
    # manifest does not read them back; the workbook is hashed from disk.
    files: dict[str, Callable[[Path], Any]] = {}
    if "json" in fmts:
        files["study.json"] = step(
            "study.json",
            lambda p: write_hashed(
                p, lambda sink: write_json(study_document(rec, head_hash=head_hash), sink)
            ),
        )
    for fmt in ("csv", "parquet"):
        if fmt not in fmts:
            continue
        for name, table in tables.items():
            writer: Callable[[HashingFile], int]
            if fmt == "csv":
                writer = (
                    lambda t: lambda sink: write_csv(csv_ready(t), sink, neutralise=neutralise)
                )(table)
            else:
                writer = (lambda t: lambda sink: write_parquet(t, sink))(table)
            files[f"{name}.{fmt}"] = step(
                f"{name}.{fmt}", functools.partial(write_hashed, write=writer)
            )
    if "xlsx" in fmts:
        files["report.xlsx"] = step(
            "report.xlsx",
            lambda p: write_report(
                rec,
                csv_ready(tables["cases"]),
                csv_ready(tables["runs"]),
                meta,
                p,
                metrics=tables["metrics"],
            ),
        )

    written: dict[str, Any] = {}

    def manifest(infos: Mapping[str, Any]) -> dict[str, Any]:
        doc = build_manifest(
            ledger_id=ledger.ledger_id,
            study=study,
            as_of=limit,
            head_hash=head_hash,
            files=infos,
            redacted=redactor.report(),
        )
        doc["formats"] = list(fmts)
        doc["where"] = where.texts
        doc["fields"] = list(fields.texts)
        doc["csv_raw"] = options.csv_raw
        written.update(doc)
        return doc

    snap = write_snapshot(out, folder, files, manifest=manifest)
    result = ExportManifest(written)
    result.path = snap.path
    result.sha256 = snap.files[MANIFEST_NAME].sha256
    return result


# ------------------------------------------------------------------------ the journal


def _journal(ledger: Ledger, result: ExportManifest, options: _Options) -> None:
    """One entry per export in the ledger's ``exports`` table (never the event log).

    Keys are the wall-clock µs (big-endian) plus 4 random bytes, so entries list in
    time order and two exports in the same µs do not collide.
    """
    import msgspec

    from ledger.codec import format_ts

    now = time.time_ns() // 1000
    entry = {
        "time": format_ts(now),
        "study": result["study"],
        "as_of": result["as_of"],
        "head_hash": result["head_hash"],
        "formats": list(options.formats),
        "manifest_sha256": result.sha256,
        "path": os.fspath(result.path),
        "files": len(result["files"]) + 1,
        "where": options.where.texts,
        "fields": list(options.fields.texts),
        "redact": options.redact,
        "extra_redact": list(options.extra_redact),
        "csv_raw": options.csv_raw,
    }
    if getattr(ledger, "readonly", False):
        warnings.warn(
            f"export of {result['study']!r} written to {os.fspath(result.path)} but not "
            f"journalled: {ledger.path} is open read-only",
            ExportJournalWarning,
            stacklevel=3,
        )
        return
    key = now.to_bytes(8, "big") + os.urandom(4)
    ledger.aux_put(JOURNAL, key, msgspec.json.encode(entry, order="sorted"))


def list_exports(ledger: Ledger, study: str | None = None) -> list[dict[str, Any]]:
    """The export journal, oldest first (only ``study``'s exports when given).

    Entries: time, study, as_of, head_hash, formats, manifest_sha256, path, files,
    where, fields, redact, extra_redact, csv_raw (entries written before it existed
    lack it). An entry that cannot be decoded is skipped with
    an ``ExportJournalWarning``.
    """
    import msgspec

    out = []
    for key, value in ledger.aux_items(JOURNAL):
        try:
            entry = msgspec.json.decode(value)
        except msgspec.DecodeError:
            warnings.warn(
                f"export journal entry {key.hex()} is not valid JSON; skipped",
                ExportJournalWarning,
                stacklevel=2,
            )
            continue
        if not isinstance(entry, dict):
            continue
        if study is None or entry.get("study") == study:
            out.append(entry)
    return out
