"""Several ORFS files as one import: parsed one by one, then combined into sources.

``read_orfs_sources`` reads each ``metadata*.json`` file (or JSON Lines bundle) with
``read_orfs`` as its own source (one atomic append each), drops what an earlier file
already carries (``dedupe_across``) and merges the summaries. Two extras are choices
about *what to record*, not about parsing: ``platforms`` keeps the records of some
platforms (one study per platform is how ``ledger rank`` ranks within a platform), and
``normalise_to`` records each timing metric a second time in one unit, next to the
original (``rank`` has no unit option, so cross-platform ranking needs values that are
already comparable).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .batches import ProgressFactory, Source, dedupe_across, merge_summaries, recount
from .common import ImportSourceError
from .orfs import metadata_files, read_orfs
from .orfs_time import is_timing_metric, normalise_timing, time_unit_of, unit_suffix

__all__ = ["filter_platforms", "normalise_orfs_timing", "read_orfs_sources"]


def read_orfs_sources(
    paths: Sequence[str | os.PathLike[str]],
    *,
    study: str,
    by_variant: bool = False,
    platforms: Sequence[str] = (),
    normalise_to: str | None = None,
    progress: ProgressFactory | None = None,
) -> tuple[list[Source], dict[str, Any]]:
    """The sources (one per file) and the summary of one ORFS import.

    Raises ``ImportSourceError`` (a bad record, two files that disagree about one run, a
    platform no record names, a normalised name that is already a metric) and
    ``ValueError`` for a ``normalise_to`` that is not a time unit.
    """
    files = metadata_files(paths)
    sources, summaries = [], []
    for n, path in enumerate(files, 1):
        label = f"reading {path}" + (f" ({n}/{len(files)})" if len(files) > 1 else "")
        line = progress(label, "records") if progress is not None else None
        try:
            result = read_orfs([path], study=study, by_variant=by_variant, progress=line)
        finally:
            if line is not None:
                line.close()
        sources.append(Source(str(path), result.events))
        summaries.append(result.summary)
    summary = merge_summaries(summaries)
    if len(sources) > 1:
        summary["study"] = study
        dropped = dedupe_across(sources)
        counts = recount(sources)
        summary["cases"] = counts["cases"]
        summary["events"] = counts["events"]
        summary["events_shared_across_files"] = dropped
    if platforms:
        summary["kept"] = filter_platforms(sources, platforms)
        summary["kept"]["events"] = recount(sources)["events"]
    if normalise_to is not None:
        summary["time_normalised"] = normalise_orfs_timing(sources, normalise_to)
    return sources, summary


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


def normalise_orfs_timing(sources: Sequence[Source], to: str) -> dict[str, Any]:
    """Add, in place, ``<metric>__<unit>`` for every timing metric of every run, in ``to``.

    The original values stay as recorded. Each run's unit is read from
    ``run__flow__platform__time_units`` (older: ``...__timing_units``) or assumed from its
    platform (asap7 and gf12 report ps, the others ns), and the run's config records
    which, under ``time_unit``: ``{"unit", "assumed", "note", "normalised_to"}``. Which
    metrics are timing is ``orfs_time.is_timing_metric``. Returns the summary
    part. Raises ``ImportSourceError`` when a normalised name is already a metric.
    """
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
