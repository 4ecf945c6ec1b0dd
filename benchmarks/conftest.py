"""Shared benchmark fixtures: seeded event generators and sizes.

BENCH_SMOKE=1 shrinks every size so `make bench-smoke` runs each benchmark once in
seconds (part of `make test`, so the benchmarks never rot).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SMOKE = os.environ.get("BENCH_SMOKE") == "1"
