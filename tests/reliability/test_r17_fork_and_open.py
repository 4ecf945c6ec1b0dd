"""R17 fork and open safety: a Ledger (or its path) carried across fork() is refused
with ForkSafetyError; spawned processes work; one environment per path per process;
concurrent open/close from 4 processes never fails."""

from __future__ import annotations

import multiprocessing
import os
import subprocess

import pytest
from rel_common import script, size

from ledger import ForkSafetyError, Ledger

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads


def _in_fork(body) -> int:
    """Run ``body`` in a forked child; its exit status (0 = it behaved)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_r17_ledger_used_in_a_forked_child_is_refused(tmp_path):
    path = str(tmp_path / "r17.ledger")
    ledger = Ledger(path)
    ledger.append([{"type": "study_created", "study": "s"}])

    def use_inherited() -> int:
        for action in (
            lambda: ledger.head,
            lambda: list(ledger.read()),
            lambda: ledger.append([{"type": "case_created", "study": "s", "case": "x"}]),
        ):
            try:
                action()
                return 1
            except ForkSafetyError as exc:
                if "LMDB environments cannot cross fork()" not in str(exc):
                    return 2
        return 0

    def reopen_same_path() -> int:
        try:
            Ledger(path, create=False)
            return 1
        except ForkSafetyError as exc:
            return 0 if "'spawn' or 'forkserver'" in str(exc) else 2

    assert _in_fork(use_inherited) == 0
    assert _in_fork(reopen_same_path) == 0
    assert ledger.head.seq == 1 and ledger.verify().ok, "the parent's ledger was disturbed"
    ledger.close()


def _spawned_append(path: str) -> int:
    with Ledger(path, create=False) as ledger:
        return ledger.append([{"type": "case_created", "study": "s", "case": "spawned"}]).head_seq


def test_r17_spawn_works(tmp_path):
    path = str(tmp_path / "r17.ledger")
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(_spawned_append, (path,)) == 2
        assert ledger.head.seq == 2


def test_r17_one_environment_per_path_per_process(tmp_path):
    path = str(tmp_path / "r17.ledger")
    a = Ledger(path)
    b = Ledger(os.path.join(str(tmp_path), ".", "r17.ledger"), create=False, readonly=True)
    assert a._store.env is b._store.env
    a.append([{"type": "study_created", "study": "s"}])
    a.close()
    assert b.head.seq == 1, "closing one Ledger closed the shared environment"
    b.close()
    with Ledger(path, create=False) as c:
        assert c._store.env is not a._store.env and c.head.seq == 1


@pytest.mark.slow
def test_r17_concurrent_open_close(tmp_path):
    path = str(tmp_path / "r17.ledger")
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    n = size(200, 2000)
    procs = [
        script("rel_openclose.py", path, n, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    for p in procs:
        assert p.stdout.readline() == b"ready\n"
    for p in procs:
        p.stdin.write(b"go\n")
        p.stdin.close()
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    with Ledger(path, create=False) as ledger:
        assert ledger.verify().ok
