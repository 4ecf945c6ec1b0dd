from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from rel_common import fast_base


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The test's random seed: RELIABILITY_SEED replays one, else a fresh one is drawn."""
    value = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\n{request.node.nodeid}: seed={value} (replay with RELIABILITY_SEED={value})")
    return value


@pytest.fixture
def fast_dir(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A tmpfs folder when there is one (tests of logic, not of the disk), else tmp_path."""
    base = fast_base()
    if base is None:
        yield str(tmp_path)
        return
    path = tempfile.mkdtemp(prefix="ledger-rel-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
