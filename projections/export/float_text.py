"""Float columns as text in Python's ``repr`` form, the way CSV and xlsx cells spell them.

Shortest round-trip digits, ``repr``'s layout (``1e-07``, ``1e+16``, ``123.0``) and the
the spellings of non-finite values (docs/architecture.md, Events), computed with Arrow kernels and numpy masks,
never one Python call per value (unless a future pyarrow lays its digits out in a way
the fast path does not expect, when an exact per-value path takes over).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["format_floats"]


def format_floats(arr: pa.Array) -> pa.Array:
    """Float column -> text in Python ``repr`` form (shortest round trip), nulls kept.

    Arrow's cast already produces the shortest digits but lays them out differently
    from ``repr`` (``1e-7``, ``0.00001``, ``1e+15``, ``1``). The layout depends only on
    the decimal exponent, which a numpy comparison against the powers of ten gives
    exactly, so the rows of each differing band are re-spelled with slicing kernels (no
    regex, no Python per row) and put back with one ``take``. Non-finite values are
    spelled ``NaN``, ``Infinity``, ``-Infinity``. ``float32`` keeps its own shortest
    digits (``0.1``, not ``0.10000000149011612``) in the same layout.
    """
    import pyarrow as pa

    if pa.types.is_float16(arr.type):
        arr = arr.cast(pa.float32())
    if _arrow_layout_is_known():
        return _format_floats_fast(arr)
    return _format_floats_python(arr)


#: Values on both sides of every layout band; if Arrow ever spells one differently
#: from what :func:`_format_floats_fast` expects, the slow but exact path is used.
_LAYOUT_PROBES = tuple(
    float(v)
    for v in (
        "0 -0 1 -7 0.1 1e-4 9.99e-5 2.5e-5 1e-5 1e-6 -1.5e-6 1.5e-7 1e-9 9.9e-10 12345678 "
        "999999999 1e10 -1.5e15 1234567890123456.8 1e16 1e22 5e-324 1.7976931348623157e308 "
        "-123.456 0.30000000000000004"
    ).split()
)


@functools.lru_cache(maxsize=1)
def _arrow_layout_is_known() -> bool:
    import pyarrow as pa

    probes = pa.array(_LAYOUT_PROBES, pa.float64())
    return _format_floats_fast(probes).to_pylist() == [repr(v) for v in _LAYOUT_PROBES]


def _spell(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _format_floats_python(arr: pa.Array) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    if pa.types.is_float32(arr.type):  # float32's own shortest digits, repr layout
        values = [None if v is None else float(str(np.float32(v))) for v in arr.to_pylist()]
    else:
        values = arr.to_pylist()
    return pa.array([None if v is None else _spell(v) for v in values], pa.string())


def _format_floats_fast(arr: pa.Array) -> pa.Array:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ftype = np.float32 if pa.types.is_float32(arr.type) else np.float64
    text = pc.cast(arr, pa.string())
    n = len(arr)
    if n == 0:
        return text
    x = arr.to_numpy(zero_copy_only=False)
    valid = np.ones(n, dtype=bool) if arr.null_count == 0 else arr.is_valid().to_numpy(False)
    a = np.abs(x)
    p10 = {k: ftype(f"1e{k}") for k in range(-9, 17)}  # parsed: the float "1eK" reads as

    def band(lo: int, hi: int) -> Any:
        return valid & (a >= p10[lo]) & (a < p10[hi])

    with np.errstate(invalid="ignore"):  # NaN compares False, as intended
        integral = valid & (a < p10[10]) & (np.floor(a) == a)
    bands: list[tuple[Any, Any]] = [
        # Arrow writes integral values without ".0" ("-0", "12345678").
        (integral, lambda s, neg: _join(s, ".0")),
        # Exponents -5, -6: Arrow writes 0.0000ddd, repr d.dde-05.
        (band(-5, -4), lambda s, neg: _small(s, neg, 6, "e-05")),
        (band(-6, -5), lambda s, neg: _small(s, neg, 7, "e-06")),
        # Exponents -7..-9: repr pads the exponent to two digits.
        (band(-9, -6), lambda s, neg: _join(_slice(s, 0, -1), "0", _slice(s, -1, None))),
    ]
    # Exponents 10..15: Arrow writes d.ddde+1K, repr the digits positionally.
    for k in range(10, 16):
        bands.append((band(k, k + 1), lambda s, neg, k=k: _positional(s, neg, k)))
    for value, spelling in ((np.nan, "NaN"), (np.inf, "Infinity"), (-np.inf, "-Infinity")):
        hit = valid & (np.isnan(x) if value != value else x == value)
        bands.append((hit, lambda s, neg, spelling=spelling: pa.repeat(spelling, len(s))))

    pieces = [text]
    index = None
    offset = n
    for mask, respell in bands:
        rows = np.flatnonzero(mask)
        if not rows.size:
            continue
        if index is None:
            index = np.arange(n, dtype=np.int64)
        sel = pa.array(mask)
        pieces.append(respell(pc.filter(text, sel), np.signbit(x[rows])).cast(pa.string()))
        index[rows] = np.arange(offset, offset + rows.size)
        offset += rows.size
    if index is None:
        return text
    return pa.concat_arrays(pieces).take(pa.array(index))


def _join(*parts: Any) -> Any:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def _slice(s: Any, start: int, stop: int | None) -> Any:
    import pyarrow.compute as pc

    return pc.utf8_slice_codeunits(s, start, stop)


def _signed(s: Any, neg: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not neg.any():
        return s
    return _join(pc.if_else(pa.array(neg), "-", ""), s)


def _small(s: Any, neg: Any, skip: int, exponent: str) -> Any:
    """``0.0000ddd`` (``skip`` characters before the first digit) -> ``d.dde-05``."""
    import pyarrow.compute as pc

    u = pc.utf8_ltrim(s, "-")
    spelled = _join(_slice(u, skip, skip + 1), ".", _slice(u, skip + 1, None), exponent)
    return _signed(pc.replace_substring(spelled, ".e", "e"), neg)


def _positional(s: Any, neg: Any, k: int) -> Any:
    """``d.ddde+1K`` -> the digits with ``k + 1`` of them before the point, as ``repr``."""
    import pyarrow.compute as pc

    digits = pc.replace_substring(_slice(pc.utf8_ltrim(s, "-"), 0, -4), ".", "")
    padded = _join(digits, "0" * 16)  # at most 17 significant digits
    frac = pc.utf8_rtrim(_slice(padded, k + 1, 17), "0")
    frac = pc.if_else(pc.equal(frac, ""), "0", frac)
    return _signed(_join(_slice(padded, 0, k + 1), ".", frac), neg)
