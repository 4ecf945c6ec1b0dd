"""Deterministic downsampling of a curve, keeping its extremes.

M4 (Jugel et al., "M4: A Visualization-Oriented Time Series Data Aggregation",
VLDB 2014): the steps are cut into ``buckets`` equal-width bins and each bin keeps its
first, last, lowest and highest point. Drawn as a line no wider than ``buckets`` pixels
the result is indistinguishable from the full curve, and every spike and dip survives
(a diverging loss or the best epoch is never averaged away). The work is done by
``tsdownsample`` (a small Rust library, deterministic, single-threaded here), which is
what plotly-resampler uses for the same job.

Non-finite values (a diverged loss recorded as NaN or infinity) cannot be drawn; they
are left out of the line and counted, and the caller says so beside the chart.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Downsampled", "m4"]


class Downsampled(NamedTuple):
    steps: np.ndarray
    values: np.ndarray
    total: int  # points in force before downsampling (finite or not)
    nonfinite: int  # points left out because they cannot be drawn


def m4(steps: np.ndarray, values: np.ndarray, buckets: int) -> Downsampled:
    """At most ``4 * buckets`` of the finite points, extremes of every bucket kept.

    ``steps`` must be sorted ascending without repeats (a series in force is)."""
    finite = np.isfinite(values)
    total = len(values)
    s = steps[finite].astype(np.int64)
    v = values[finite].astype(np.float64)
    n_out = 4 * buckets
    if len(v) > n_out:
        from tsdownsample import M4Downsampler

        idx = M4Downsampler().downsample(s, v, n_out=n_out)
        idx = np.unique(np.asarray(idx, np.int64))  # a bucket's first may be its min
        s, v = s[idx], v[idx]
    return Downsampled(s, v, total, int(total - finite.sum()))
