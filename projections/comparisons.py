"""The comparison operators that ``--require``, ``--where``, ``ledger check`` rules and
analytics queries spell the same way: one table, so an operator means one thing in every
language. The functions work on scalars and numpy arrays alike."""

from __future__ import annotations

import operator

__all__ = ["COMPARISONS"]

COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
