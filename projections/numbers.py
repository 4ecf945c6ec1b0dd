"""Numbers as the projections write them: one rule each, shared. (What counts as a
number — an int or a float, never a bool — is :func:`ledger.numbers.is_number`.)

- :func:`float_or_none` — a statistic as results spell it: a Python float, or None
  where it is undefined (NaN, or nothing at all);
- :func:`number_text` — a number in a message or a constraint's text: ``0`` rather than
  ``0.0``, ``NaN`` rather than ``nan``, otherwise ``repr``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["float_or_none", "number_text"]


def float_or_none(x: Any) -> float | None:
    """A Python float, or None for None and NaN: the one spelling of "undefined"."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def number_text(x: float) -> str:
    """``0.0 -> "0"``, ``nan -> "NaN"``, ``0.5 -> "0.5"`` (whole floats below 1e16 as ints)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return repr(x)
