"""The public surface and the import weight are part of the contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ledger

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pyarrow", "scipy", "click", "numpy", "projections", "xlsxwriter")


def _loaded_after(code: str) -> list[str]:
    probe = (
        code + f"\nimport sys\nprint('\\n' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()[-1].split() if out.stdout.strip() else []


def test_import_ledger_stays_light():
    assert _loaded_after("import ledger") == []


def test_recording_stays_light(tmp_path):
    code = (
        "from ledger import Recorder\n"
        f"with Recorder({str(tmp_path / 'l')!r}, study='s') as rec:\n"
        "    with rec.case('c').run() as run:\n"
        "        run.log({'x': 1.0}, step=0)\n"
    )
    assert _loaded_after(code) == []


def test_cli_help_and_append_do_not_load_scipy_or_pyarrow(tmp_path):
    code = (
        "import sys\n"
        "from cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "    cli.main(['--ledger', {!r}, 'append', '/dev/null'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n".format(str(tmp_path / "c"))
    )
    loaded = _loaded_after(code)
    assert "scipy" not in loaded and "pyarrow" not in loaded and "numpy" not in loaded


def test_public_names_are_locked():
    assert sorted(ledger.__all__) == sorted(
        [
            "AppendResult",
            "CaseHandle",
            "CorruptionError",
            "Envelope",
            "EventError",
            "ForkSafetyError",
            "HeadMoved",
            "IdempotencyConflict",
            "Ledger",
            "LedgerDecodeError",
            "LedgerError",
            "LedgerFull",
            "LedgerNotFound",
            "LedgerWriteFailed",
            "Plan",
            "Recorder",
            "RuleViolation",
            "RunClosed",
            "RunHandle",
            "StorageError",
            "VerifyReport",
            "__version__",
        ]
    )
    for name in ledger.__all__:
        assert hasattr(ledger, name), name


def test_every_error_is_a_ledger_error():
    import ledger.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.LedgerError)
