"""Where an LMDB ledger may be created: a new or empty folder, never a folder of other
files (a typo in ``--ledger`` must not turn it into a ledger) nor a file."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger, LedgerNotFound


def test_a_folder_of_other_files_is_refused(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(LedgerNotFound, match=r"is a folder holding other files \(notes\.txt\)"):
        Ledger(str(folder))
    assert sorted(os.listdir(folder)) == ["notes.txt"]  # nothing written into it
    result = CliRunner().invoke(cli, ["--ledger", str(folder), "append", "-"], input="")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "holding other files" in result.stderr
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_a_file_is_refused(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(LedgerNotFound, match="is a file, not a ledger folder"):
        Ledger(str(path))


def test_new_and_empty_folders_and_existing_ledgers_are_fine(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for where in (tmp_path / "new" / "deeper", empty):
        with Ledger(str(where)) as led:
            led.append([{"type": "study_created", "study": "s"}])
        with Ledger(str(where)) as led:  # its own files are no reason to refuse it
            assert led.head.seq == 1
