"""Verification that survives the storage it checks.

LMDB 0.9 has no page checksums, and a flipped bit can make a reader die of SIGBUS
(RELIABILITY.md item 1). ``verify_isolated`` therefore scans in a child process: a
signal death of the child is reported as corruption, never as a crash of the caller.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from .log import Ledger, VerifyReport

__all__ = ["verify_isolated"]


def verify_isolated(path: str, *, timeout: float | None = None) -> VerifyReport:
    """Run ``Ledger(path).verify()`` in a child process and return its report.

    Raises ``LedgerNotFound`` (from the parent's own check) when no ledger is there.
    """
    Ledger(path, create=False, readonly=True).close()
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.integrity", path],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = str(-proc.returncode)
        return VerifyReport(
            ok=False,
            events=0,
            head_seq=-1,
            head_hash="",
            first_bad_seq=None,
            error=f"storage error: the verifier died of {name} reading {path}; the ledger "
            "files are corrupt (restore a backup)",
        )
    try:
        data = json.loads(proc.stdout.decode() or "null")
        return VerifyReport(**data)
    except (ValueError, TypeError):
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return VerifyReport(
            ok=False,
            events=0,
            head_seq=-1,
            head_hash="",
            error=f"storage error: {detail[0]}",
        )


def _main(path: str) -> int:
    import msgspec

    from .errors import LedgerError

    try:
        with Ledger(path, create=False, readonly=True) as ledger:
            report = ledger.verify()
    except LedgerError as exc:
        report = VerifyReport(
            ok=False, events=0, head_seq=-1, head_hash="", error=f"storage error: {exc}"
        )
    sys.stdout.write(msgspec.json.encode(report).decode())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
