"""Snapshot folders: atomic replace, confinement (R15), manifest hashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.export import snapshot as snapshot_mod
from projections.export.manifest import (
    MANIFEST_NAME,
    build_manifest,
    file_info,
    read_manifest,
    verify_manifest,
)
from projections.export.safety import (
    ExportError,
    UnsafePathError,
    assign_folder_names,
    redaction_report,
)
from projections.export.snapshot import write_snapshot

ROOT = Path(__file__).resolve().parents[3]
TABLE = pa.table({"case": ["a", "=b"], "value": [0.5, -1.0]})


def manifest_for(study="s"):
    def build(files):
        return build_manifest(
            ledger_id="L1",
            study=study,
            as_of=7,
            head_hash="ab" * 32,
            files=files,
            redacted=redaction_report([]),
            versions={"results-ledger": "test"},
        )

    return build


def tree(path: Path) -> dict[str, bytes | str]:
    """Every entry under ``path`` with its bytes (files) or link target (symlinks)."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = os.fspath(full.relative_to(path))
            if full.is_symlink():
                out[rel] = "-> " + os.readlink(full)
            elif full.is_file():
                out[rel] = full.read_bytes()
            else:
                out[rel] = "<dir>"
    return out


def write_v(out, version, **kw):
    files = {"cases.csv": TABLE, "cases.parquet": TABLE, "study.json": {"version": version}}
    return write_snapshot(out, "s", files, manifest=manifest_for(), **kw)


# ------------------------------------------------------------------ basics and manifest


def test_snapshot_files_and_manifest_hashes(tmp_path):
    snap = write_v(tmp_path, 1)
    assert snap.path == tmp_path.resolve() / "s"
    assert sorted(os.listdir(tmp_path)) == ["s"]
    assert sorted(os.listdir(snap.path)) == [
        "cases.csv",
        "cases.parquet",
        MANIFEST_NAME,
        "study.json",
    ]
    manifest = read_manifest(snap.path)
    assert set(manifest) == {
        "ledger_id",
        "study",
        "as_of",
        "head_hash",
        "format_version",
        "versions",
        "files",
        "redacted",
    }
    assert set(manifest["files"]) == {"cases.csv", "cases.parquet", "study.json"}
    for name, entry in manifest["files"].items():
        info = file_info(snap.path / name)
        assert entry["sha256"] == info.sha256 == snap.files[name].sha256
        assert entry["bytes"] == info.bytes
    assert manifest["files"]["cases.csv"]["rows"] == 2
    assert manifest["files"]["study.json"]["rows"] is None
    assert verify_manifest(snap.path) == []
    (snap.path / "cases.csv").write_bytes(b"tampered")
    (snap.path / "stray.txt").write_text("x")
    assert verify_manifest(snap.path) == [
        f"cases.csv: content differs from the manifest (sha256 {file_info(snap.path / 'cases.csv').sha256})",
        "stray.txt: not listed in the manifest",
    ]


def test_manifest_bytes_are_deterministic(tmp_path):
    a = write_v(tmp_path / "a", 1)
    b = write_v(tmp_path / "b", 1)
    assert tree(a.path) == tree(b.path)


def test_manifest_default_versions_name_the_writers(tmp_path):
    def build(files):
        return build_manifest(
            ledger_id="L", study="s", as_of=1, head_hash="h", files=files, redacted={}
        )

    snap = write_snapshot(tmp_path, "s", {"t.csv": TABLE}, manifest=build)
    versions = read_manifest(snap.path)["versions"]
    assert {"results-ledger", "pyarrow", "xlsxwriter", "msgspec", "zlib", "python"} <= set(versions)
    assert versions["pyarrow"] == pa.__version__


# ------------------------------------------------------------------ atomic replace


def test_existing_snapshot_is_replaced(tmp_path):
    write_v(tmp_path, 1)
    snap = write_v(tmp_path, 2)
    assert b'"version": 2' in (snap.path / "study.json").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["s"]  # no leftovers


def test_replace_without_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot_mod, "_exchange", lambda a, b: False)
    write_v(tmp_path, 1)
    snap = write_v(tmp_path, 2)
    assert b'"version": 2' in (snap.path / "study.json").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["s"]


def test_failure_mid_write_leaves_the_old_snapshot(tmp_path):
    write_v(tmp_path, 1)
    before = tree(tmp_path)

    def explode(path):
        path.write_bytes(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_snapshot(tmp_path, "s", {"a.csv": TABLE, "b.bin": explode}, manifest=manifest_for())
    assert tree(tmp_path) == before


def test_failure_while_renaming_in_restores_the_old_snapshot(tmp_path, monkeypatch):
    write_v(tmp_path, 1)
    before = tree(tmp_path)
    monkeypatch.setattr(snapshot_mod, "_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def flaky_rename(src, dst):
        calls.append((os.fspath(src), os.fspath(dst)))
        if len(calls) == 2:  # the new folder moving in
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(snapshot_mod.os, "rename", flaky_rename)
    with pytest.raises(OSError, match="No space left"):
        write_v(tmp_path, 2)
    monkeypatch.setattr(snapshot_mod.os, "rename", real_rename)
    assert tree(tmp_path) == before
    assert ".old.tmp-" in calls[0][1]


def test_killed_exporter_leaves_old_snapshot_and_only_tmp_leftovers(tmp_path):
    write_v(tmp_path, 1)
    before = tree(tmp_path / "s")
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {os.fspath(ROOT)!r})
        import pyarrow as pa
        from projections.export.snapshot import write_snapshot
        def slow(path):
            path.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)
        write_snapshot({os.fspath(tmp_path)!r}, "s", {{"a.csv": pa.table({{"x": [1]}}), "b.bin": slow}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert tree(tmp_path / "s") == before
    leftovers = sorted(n for n in os.listdir(tmp_path) if n != "s")
    assert len(leftovers) == 1 and leftovers[0].startswith("s.tmp-")


def test_refuses_to_replace_what_is_not_a_snapshot(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="is not an export snapshot"):
        write_v(tmp_path, 1)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(ExportError, match="exists and is not a folder"):
        write_snapshot(tmp_path, "f", {"a.csv": TABLE})
    write_v(tmp_path / "x", 1)
    with pytest.raises(ExportError, match="pass replace=True"):
        write_v(tmp_path / "x", 2, replace=False)
    assert (tmp_path / "s" / "thesis.tex").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["f", "s", "x"]


def test_sources_must_be_writable(tmp_path):
    with pytest.raises(ExportError, match="an Arrow table needs a .csv or .parquet name"):
        write_snapshot(tmp_path, "s", {"t.xlsx": TABLE})
    with pytest.raises(ExportError, match="written by the manifest callback"):
        write_snapshot(tmp_path, "s", {MANIFEST_NAME: b"{}"}, manifest=manifest_for())
    with pytest.raises(ExportError, match="did not create a regular file"):
        write_snapshot(tmp_path, "s", {"x.bin": lambda path: None})
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ R15 path traversal

HOSTILE = [
    "../x",
    "a/../../b",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a\0b",
    "CON",
    "nul.txt",
    "x" * 300,
    "a／b",
    "study ",
]


def test_hostile_study_names_stay_inside_out(tmp_path):
    parent = tmp_path.parent
    before_parent = sorted(os.listdir(parent))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched")
    before_outside = tree(outside)
    out = tmp_path / "out"
    folders = assign_folder_names(HOSTILE)
    assert len(set(folders.values())) == len(HOSTILE)
    for name in HOSTILE:
        snap = write_snapshot(out, folders[name], {"cases.csv": TABLE}, manifest=manifest_for(name))
        assert snap.path.parent == out.resolve()
        assert read_manifest(snap.path)["study"] == name
    assert sorted(os.listdir(out)) == sorted(folders.values())
    assert sorted(os.listdir(parent)) == before_parent
    assert sorted(os.listdir(tmp_path)) == ["out", "outside"]
    assert tree(outside) == before_outside
    assert not Path("/etc/passwd.csv").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", "a\0b", "CON", "study "])
def test_unsafe_folder_and_file_names_are_refused(tmp_path, name):
    with pytest.raises(UnsafePathError, match="is not a safe name"):
        write_snapshot(tmp_path, name, {"a.csv": TABLE})
    with pytest.raises(UnsafePathError, match="is not a safe name"):
        write_snapshot(tmp_path, "ok", {name: TABLE})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("inside", [False, True])
def test_planted_symlink_at_the_target_is_refused(tmp_path, inside):
    out = tmp_path / "out"
    out.mkdir()
    victim = (out / "elsewhere") if inside else (tmp_path / "victim")
    victim.mkdir()
    (victim / "manifest.json").write_text("{}")  # looks like a snapshot, still refused
    (out / "s").symlink_to(victim, target_is_directory=True)
    before = tree(tmp_path)
    with pytest.raises(UnsafePathError, match="symlink|outside the output folder"):
        write_v(out, 1)
    assert tree(tmp_path) == before


def test_symlinked_out_dir_is_followed_once(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    snap = write_v(tmp_path / "link", 1)
    assert snap.path == real / "s"
    assert sorted(os.listdir(real)) == ["s"]


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80))
def test_random_names_export_inside_out(tmp_path_factory, name):
    base = tmp_path_factory.getbasetemp() / "snapshot-property"
    folder = assign_folder_names([name])[name]
    snap = write_snapshot(base, folder, {"v.json": {"n": name}}, manifest=manifest_for(name))
    assert snap.path.parent == base.resolve()
    assert all(not n.endswith(".tmp") and ".tmp-" not in n for n in os.listdir(base))
