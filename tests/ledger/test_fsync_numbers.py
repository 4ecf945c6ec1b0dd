"""The small shared helpers: the one fsync helper and the one number test."""

from __future__ import annotations

import math

import pytest

from ledger.fsync import fsync_dir, fsync_file
from ledger.numbers import is_number


def test_fsync_a_file_and_its_folder(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    fsync_file(f)
    fsync_dir(tmp_path)
    fsync_dir(str(tmp_path), strict=False)


def test_a_folder_that_cannot_be_opened_raises_unless_told_not_to(tmp_path):
    missing = tmp_path / "gone"
    with pytest.raises(FileNotFoundError):
        fsync_dir(missing)
    fsync_dir(missing, strict=False)  # skipped, as on Windows
    with pytest.raises(NotADirectoryError):
        (tmp_path / "f").write_text("x")
        fsync_dir(tmp_path / "f")


@pytest.mark.parametrize(
    "value, expected",
    [(1, True), (-2.5, True), (math.nan, True), (math.inf, True), (True, False),
     (False, False), ("1", False), (None, False), ([1], False)],
)  # fmt: skip
def test_is_number_takes_ints_and_floats_never_bools(value, expected):
    assert is_number(value) is expected
