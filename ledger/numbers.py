"""What counts as a number in an event: the one definition, used wherever a value is
tested before it is treated as a metric.

A metric value is an ``int`` or a ``float`` (NaN and ±inf included) and never a ``bool``
— Python's ``True`` is an ``int``, JSON's ``true`` is not a number, and an event that
says ``"loss": true`` is refused rather than recorded as 1 (docs/architecture.md,
"Events"). Parsing text into a number (a CSV cell) is another question:
``ledger.importers.common.parse_number``.
"""

from __future__ import annotations

from typing import Any, TypeGuard

__all__ = ["is_number"]


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON value the ledger accepts as a metric: int or float, never bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
