"""ORFS time units: which metrics are timing, the unit a run reports in, conversions.

OpenROAD-flow-scripts reports time in ps on asap7 and gf12 and in ns on the other
platforms, as a run's ``run__flow__platform__time_units`` (older:
``...__timing_units``) says when present. ``time_unit_of`` reads that unit from a run's
attributes or assumes it from the platform, saying which; ``normalise_timing`` converts
each run's timing metrics into one unit. The ORFS importer uses these for
``--normalise-time`` (``orfs_sources``); rules evaluation (``projections.rules_eval``)
for ``ledger check --rules-time-unit``.

A metric is *timing* when its ``__``-separated name has a ``timing`` or ``clock``
component and a ``_``-separated word among ws, wns, tns, slack, latency, skew, period,
delay, slew, and no ``drv`` component (design-rule counts and ratios) and no word among
count, percent, per, area, util, violation(s), cap, fanout (counts and ratios that sit
under the same prefixes). E.g. ``finish__timing__setup__ws``, ``cts__clock__skew__hold``,
``globalroute__timing__clock__period`` are timing; ``finish__timing__drv__max_slew`` (a
count), ``finish__timing__wns_percent_delay`` (a ratio) are not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.numbers import is_number

__all__ = [
    "TimeUnit",
    "is_timing_metric",
    "normalise_timing",
    "parse_time_unit",
    "time_unit_of",
    "unit_suffix",
]

TIME_UNIT_KEYS = ("run__flow__platform__time_units", "run__flow__platform__timing_units")
PLATFORM_KEYS = ("run__flow__platform", "platform")
PLATFORM_TIME_UNIT = {"asap7": "ps", "gf12": "ps"}
DEFAULT_TIME_UNIT = "ns"

_TIME_WORDS = frozenset({"ws", "wns", "tns", "slack", "latency", "skew", "period", "delay", "slew"})
_NOT_TIME_WORDS = frozenset(
    {"count", "percent", "per", "area", "util", "violation", "violations", "cap", "fanout"}
)
_EXPONENT = {"fs": -15, "ps": -12, "ns": -9, "us": -6, "µs": -6, "ms": -3, "s": 0}
_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)?\s*(fs|ps|ns|us|µs|ms|s)\s*", re.ASCII)


def is_timing_metric(name: str) -> bool:
    parts = name.split("__")
    if "drv" in parts or not ({"timing", "clock"} & set(parts)):
        return False
    words = {w for p in parts for w in p.split("_")}
    return bool(words & _TIME_WORDS) and not (words & _NOT_TIME_WORDS)


def parse_time_unit(text: str) -> tuple[int, int]:
    """``"1ps"`` -> (1, -12): a multiplier and a power of ten of seconds, or ValueError."""
    m = _UNIT.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a time unit such as '1ps' or '1ns'")
    mult = float(m.group(1)) if m.group(1) else 1.0
    if mult != int(mult) or mult <= 0:
        raise ValueError(f"{text!r}: only whole positive multipliers are supported")
    return int(mult), _EXPONENT[m.group(2)]


@dataclass(frozen=True)
class TimeUnit:
    unit: str
    assumed: bool
    note: str


def time_unit_of(attrs: Mapping[str, Any]) -> TimeUnit:
    """The time unit a run reports in, read from its attributes or assumed from its platform."""
    for key in TIME_UNIT_KEYS:
        value = attrs.get(key)
        if isinstance(value, str) and value.strip():
            try:
                parse_time_unit(value)
            except ValueError:
                continue
            return TimeUnit(value.strip(), False, f"read from {key}")
    platform = next((attrs[k] for k in PLATFORM_KEYS if isinstance(attrs.get(k), str)), None)
    unit = PLATFORM_TIME_UNIT.get(platform or "", DEFAULT_TIME_UNIT)
    why = (
        f"platform {platform} reports {unit}"
        if platform in PLATFORM_TIME_UNIT
        else f"platform {platform} is not asap7 or gf12, so ns"
        if platform
        else "no platform known, so ns"
    )
    return TimeUnit(f"1{unit}", True, f"assumed 1{unit}: {TIME_UNIT_KEYS[0]} missing; {why}")


def _converter(src: str, dst: str) -> Callable[[Any], Any]:
    m1, e1 = parse_time_unit(src)
    m2, e2 = parse_time_unit(dst)
    d = e1 - e2
    if m1 == m2:
        if d == 0:
            return lambda v: v
        # shift the decimal point of the shortest repr: 85.2952 ps is 0.0852952 ns, not
        # 0.08529519999999999 as v / 1000 would give
        return lambda v: float(Decimal(repr(float(v))).scaleb(d)) if math.isfinite(v) else v
    factor = Decimal(m1).scaleb(e1) / Decimal(m2).scaleb(e2)
    return lambda v: float(Decimal(repr(float(v))) * factor) if math.isfinite(v) else v


def normalise_timing(
    final: Mapping[str, Mapping[str, Any]],
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    to: str = "1ns",
) -> tuple[dict[str, dict[str, Any]], dict[str, TimeUnit]]:
    """Every run's timing metrics in ``to`` (other metrics unchanged), and per run the unit read.

    The second result says for each run which unit its values were taken to be in and
    whether that was assumed (``TimeUnit.assumed``, ``TimeUnit.note``).
    """
    parse_time_unit(to)
    attrs = attrs or {}
    out: dict[str, dict[str, Any]] = {}
    units: dict[str, TimeUnit] = {}
    for run in sorted(final):
        tu = time_unit_of(attrs.get(run, {}))
        units[run] = tu
        conv = _converter(tu.unit, to)
        out[run] = {
            k: conv(v) if is_timing_metric(k) and is_number(v) else v for k, v in final[run].items()
        }
    return out, units


def unit_suffix(unit: str) -> str:
    """``"1ns"``/``"ns"`` -> ``"ns"``, ``"10ps"`` -> ``"10ps"``: the normalised names' suffix."""
    mult, _ = parse_time_unit(unit)
    word = unit.strip().lstrip("0123456789.").strip()
    return word if mult == 1 else f"{mult}{word}"
