"""The public surface and the import weight are part of the contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _modules_after(code: str, *args: str) -> set[str]:
    """Every module a fresh interpreter holds after running ``code``."""
    probe = code + "\nimport sys\nprint('\\n' + ' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode in (0, 2), out.stderr
    return set(out.stdout.splitlines()[-1].split())


def test_import_ledger_stays_light():
    assert _loaded_after("import ledger") == []


def test_import_ledger_loads_the_errors_only():
    """The public classes import their modules on first use (PEP 562): a bare
    ``import ledger`` pays for neither msgspec, lmdb nor hashlib."""
    loaded = _modules_after("import ledger")
    assert {m for m in loaded if m.startswith("ledger")} == {"ledger", "ledger.errors"}
    assert not loaded & {"msgspec", "lmdb", "hashlib"}


def test_event_annotations_are_objects_not_strings():
    """ledger/events.py has no ``from __future__ import annotations``: msgspec resolves
    string annotations with an eval per field, ~4.5 ms at the start of every process."""
    from ledger import events

    for cls in (*events.EVENT_TYPES.values(), events.Envelope, events.Objective):
        hints = vars(cls).get("__annotations__", {})
        assert hints and not any(isinstance(h, str) for h in hints.values()), cls


def test_every_public_name_resolves_lazily():
    loaded = _modules_after(
        "import ledger\n"
        "for name in ledger.__all__:\n"
        "    assert getattr(ledger, name) is not None, name\n"
        "from ledger import Head, Ledger, Recorder\n"
        "from ledger import *\n"
        "assert Ledger.__module__ == 'ledger.log' and Recorder.__module__ == 'ledger.recorder'\n"
        "assert ledger.log.Ledger is Ledger  # submodules resolve as when imported eagerly\n"
        "assert set(ledger.__all__) <= set(dir(ledger))\n"
        "try:\n"
        "    ledger.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    assert {"ledger.log", "ledger.recorder", "ledger.plan", "msgspec"} <= loaded


def test_cli_help_imports_no_command_and_no_ledger_module():
    """``ledger --help`` lists the commands from cli.main.SUMMARIES: it imports none of
    them, so neither msgspec nor lmdb, only click."""
    loaded = _modules_after(
        "from cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='ledger')\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert {m for m in loaded if m.startswith("ledger")} == {"ledger", "ledger.errors"}
    assert {m for m in loaded if m.startswith("cli.")} == {"cli.main", "cli.commands"}
    assert not loaded & {"msgspec", "lmdb", "hashlib", "projections"}


@pytest.mark.parametrize("width", [40, 80, 200])
def test_cli_help_lists_what_the_commands_say(width):
    """The lazy listing is byte-for-byte what click prints from the command objects
    themselves; a command whose first sentence changed must change SUMMARIES too."""
    import click

    from cli.main import COMMANDS, SUMMARIES, cli

    assert sorted(SUMMARIES) == sorted(COMMANDS)
    ctx = click.Context(cli, info_name="ledger", terminal_width=width, max_content_width=width)
    eager = click.Group("ledger", commands={n: cli.get_command(ctx, n) for n in COMMANDS})

    def listing(group: click.Group) -> str:
        formatter = ctx.make_formatter()
        group.format_commands(ctx, formatter)
        return formatter.getvalue()

    lazy = listing(cli)
    assert lazy == listing(eager)
    assert "append" in lazy and "verify" in lazy


def test_cli_help_without_an_editable_install(tmp_path):
    """A regular install has no editable finder in ``site`` importing modules for us
    (it had been hiding a missing ``import importlib.util``): run the CLI with ``-S``
    and only the checkout and site-packages on the path."""
    import site

    path = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    out = subprocess.run(
        [sys.executable, "-S", "-c", "from cli.main import main; main()", "--help"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Commands:" in out.stdout and "append" in out.stdout


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
            "AnchorError",
            "AppendResult",
            "AuthenticationFailed",
            "EventTooLarge",
            "ImportSourceError",
            "MissingDependency",
            "UnsafeLocation",
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
            "RunPruned",
            "StorageError",
            "StoreUnavailable",
            "VerifyReport",
            "__version__",
            "merge",
            "sync",
        ]
    )
    for name in ledger.__all__:
        assert hasattr(ledger, name), name


def test_every_error_is_a_ledger_error():
    import ledger.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.LedgerError)
