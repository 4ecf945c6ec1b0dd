"""Verification that survives the storage it checks.

LMDB 0.9 has no page checksums, and a flipped bit or a truncated file can make a reader
die of SIGBUS (docs/reliability.md, pitfall 1). ``verify_isolated`` therefore scans in a child
process: a signal death of the child is reported as corruption, never as a crash of the
caller, and the caller never maps the files itself.

The children are forked by a small server (``python -m ledger.integrity --serve``): a
clean interpreter that imported the ledger once and never opens an environment itself.
Each check then costs a fork instead of an interpreter start-up (a corruption battery
runs hundreds), no LMDB environment ever crosses a fork (docs/reliability.md, pitfall 6), and unlike
``multiprocessing`` nothing re-imports the caller's ``__main__``.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from .log import Ledger, VerifyReport
from .store import MEMORY_PREFIX, is_url
from .store import lmdb_env as _lmdb

__all__ = ["verify_isolated"]


def _failed(error: str) -> VerifyReport:
    return VerifyReport(ok=False, events=0, head_seq=-1, head_hash="", error=error)


def verify_isolated(
    path: str | os.PathLike[str],
    *,
    timeout: float | None = None,
    lock: bool | None = None,
    allow_network_fs: bool = False,
) -> VerifyReport:
    """Run ``Ledger(path).verify()`` in a child process and return its report (a
    PostgreSQL or in-memory ledger is verified in this process: its bytes come from a
    server or from memory, never from a mapped file that could kill the reader).

    Never raises on damaged files: a child killed by a signal, one that says nothing or
    one that runs past ``timeout`` seconds gives a failed report. ``lock=None`` opens
    with LMDB's lock unless ``path`` is a backup in a folder this user cannot write to.
    Raises ``LedgerNotFound`` (checked on the file names only) when no ledger is there.
    """
    path = os.fspath(path)
    if is_url(path) or path.startswith(MEMORY_PREFIX):
        # A database server's bytes cannot crash this process: verify in place.
        with Ledger(path, create=False, readonly=True) as ledger:
            return ledger.verify()
    real = _lmdb.require_ledger(path)
    if lock is None:
        lock = not (_lmdb.is_backup(real) and not os.access(real, os.W_OK))
    request = {"path": real, "lock": lock, "allow_network_fs": allow_network_fs}
    reply = _SERVER.ask(request, timeout)
    if reply is None:
        return _failed(f"storage error: verifying {path} did not finish within {timeout} s")
    if reply.get("signal"):
        try:
            name = signal.Signals(reply["signal"]).name
        except ValueError:
            name = f"signal {reply['signal']}"
        said = f" ({reply['stderr']})" if reply.get("stderr") else ""
        return _failed(
            f"storage error: the verifier died of {name} reading {path}{said}; the ledger "
            "files are corrupt (restore a backup)"
        )
    try:
        return VerifyReport(**json.loads(reply["report"]))
    except (KeyError, ValueError, TypeError):
        return _failed(
            f"storage error: the verifier of {path} exited with status "
            f"{reply.get('status')} without a report; the ledger files are probably corrupt"
        )


class _Server:
    """The parent's handle on the fork server, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = 0

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._pid == os.getpid() and self._proc.poll() is None:
            return self._proc
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.integrity", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._pid = os.getpid()
        return self._proc

    def ask(self, request: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = _readline(proc.stdout, timeout)
            except OSError:
                line = b""
            if line is None:
                self.stop(kill=True)
                return None
            if not line:
                self.stop(kill=True)
                return {"signal": 0, "status": "lost (the verifier server died)"}
            return json.loads(line)

    def stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None or self._pid != os.getpid():
            return
        if kill:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _readline(stream: IO[bytes], timeout: float | None) -> bytes | None:
    """One line from the server, or None after ``timeout`` seconds."""
    if timeout is None:
        return stream.readline()
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return buf
        buf += chunk
    return buf


_SERVER = _Server()
atexit.register(_SERVER.stop)


# -- the child side --------------------------------------------------------------------


def _scan(path: str, lock: bool, allow_network_fs: bool = False) -> VerifyReport:
    """The check itself: any failure at all is a failed report."""
    from .errors import LedgerError

    shared = None
    try:
        shared = _lmdb.acquire(
            path, create=False, readonly=True, lock=lock, allow_network_fs=allow_network_fs
        )
        with Ledger(path, create=False, readonly=True, allow_network_fs=allow_network_fs) as ledger:
            return ledger.verify()
    except LedgerError as exc:
        return _failed(f"storage error: {exc}")
    except Exception as exc:  # damaged bytes can break any assumption of the reader
        return _failed(f"storage error: unreadable ledger ({type(exc).__name__}: {exc})")
    finally:
        if shared is not None:
            _lmdb.release(shared)


def _serve() -> int:
    """Fork one child per request line; reply with its report and how it ended."""
    import msgspec

    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        rfd, wfd = os.pipe()
        errors = tempfile.TemporaryFile()  # what LMDB prints when it aborts
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(rfd)
            os.dup2(errors.fileno(), 2)
            code = 0
            try:
                report = _scan(request["path"], request["lock"], request["allow_network_fs"])
                data = msgspec.json.encode(report)
                while data:
                    data = data[os.write(wfd, data) :]
            except BaseException:
                code = 1
            os._exit(code)
        os.close(wfd)
        chunks = []
        with os.fdopen(rfd, "rb") as fh:
            while chunk := fh.read(65536):
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        errors.seek(0)
        said = errors.read(4096).decode("utf-8", "replace").strip().splitlines()
        errors.close()
        reply = {
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
            "status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "report": b"".join(chunks).decode("utf-8", "replace"),
            "stderr": said[-1] if said else "",
        }
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
    return 0


def _main(argv: list[str]) -> int:
    """``python -m ledger.integrity PATH`` scans in this process, JSON on stdout."""
    import msgspec

    if argv == ["--serve"]:
        return _serve()
    real = _lmdb.require_ledger(argv[0])
    sys.stdout.write(msgspec.json.encode(_scan(real, True)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
