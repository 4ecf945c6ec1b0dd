"""Cells, names, paths and secrets (docs/reliability.md: pitfalls 12-13, rows R13-R15)."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from projections.export.safety import (
    REDACTED,
    TRIGGERS,
    ExportError,
    UnsafePathError,
    assign_folder_names,
    confine,
    is_secret_key,
    neutralise_array,
    neutralise_cell,
    redact_for_export,
    redaction_report,
    safe_name,
    unneutralise_cell,
)

# ------------------------------------------------------------------ neutralising cells


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_trigger_is_prefixed(trigger):
    assert neutralise_cell(trigger + "cmd") == "'" + trigger + "cmd"
    assert neutralise_cell(trigger) == "'" + trigger


def test_owasp_example():
    assert neutralise_cell('=1+2";=1+2') == "'=1+2\";=1+2"
    assert neutralise_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert neutralise_cell("@SUM(1+1)*cmd|' /C calc'!A0") == "'@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.mark.parametrize("text", ["-1", "-1.5", "-.5", "-1e5", "-2.5E-07", "'-3"])
def test_negative_numbers_in_text_are_data(text):
    assert neutralise_cell(text) == text


@pytest.mark.parametrize("text", ["-x", "-1+2", "-1e", "--1", "-Infinity", "-NaN", "-1\n", "+1"])
def test_minus_and_plus_that_are_not_numbers_are_prefixed(text):
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "ok", "a=b", " =1", "'quoted", "1-2", "x@y"])
def test_harmless_text_is_unchanged(text):
    assert neutralise_cell(text) == text


def test_apostrophe_chains_stay_invertible():
    # "'=x" is not a formula, but leaving it would make un-escaping ambiguous.
    assert neutralise_cell("'=x") == "''=x"
    assert unneutralise_cell("''=x") == "'=x"
    assert unneutralise_cell("'=x") == "=x"
    assert unneutralise_cell("'quoted") == "'quoted"


cell_text = st.one_of(
    st.text(max_size=12),
    st.builds(
        lambda t, s: t + s, st.sampled_from(TRIGGERS + ("'", "''", "'=")), st.text(max_size=8)
    ),
    st.floats(allow_nan=False).map(repr),
    st.integers().map(str),
)


@settings(max_examples=300, deadline=None)
@given(cell_text)
def test_neutralise_is_safe_and_invertible(text):
    out = neutralise_cell(text)
    assert unneutralise_cell(out) == text
    if out and out[0] in TRIGGERS:  # only a plain negative number keeps a leading "-"
        assert out[0] == "-" and out == text
        float(out)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), cell_text), max_size=30), st.booleans())
def test_vectorised_equals_scalar(values, large):
    arr = pa.array(values, type=pa.large_string() if large else pa.string())
    expected = [None if v is None else neutralise_cell(v) for v in values]
    assert neutralise_array(arr).to_pylist() == expected
    assert neutralise_array(arr.slice(1)).to_pylist() == expected[1:]
    chunked = pa.chunked_array([arr, arr])
    assert neutralise_array(chunked).to_pylist() == expected * 2


def test_vectorised_dictionary_and_clean_column():
    dict_arr = pa.array(["=a", "b", "=a", None]).dictionary_encode()
    out = neutralise_array(dict_arr)
    assert pa.types.is_dictionary(out.type)
    assert out.to_pylist() == ["'=a", "b", "'=a", None]
    clean = pa.array(["a", "b", None, ""])
    assert neutralise_array(clean) is clean  # nothing to do: no copy


# ------------------------------------------------------------------ names and paths

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
    "..\\..\\windows",
    "com1.tar.gz",
    "LPT9",
    "実験",
    ".hidden",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_name_of_hostile_names(name, tmp_path):
    safe = safe_name(name)
    assert safe and safe not in (".", "..")
    assert set(safe) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert not safe.startswith(".")
    assert len(safe) <= 120
    assert safe.split(".")[0].upper() not in {"CON", "NUL", "COM1", "LPT9", "PRN", "AUX"}
    assert safe_name(safe) == safe
    assert confine(tmp_path, safe).parent == tmp_path.resolve()


def test_safe_name_examples():
    assert safe_name("../x") == "_x"
    assert safe_name("CON") == "_CON"
    assert safe_name("nul.txt") == "_nul.txt"
    assert safe_name("a／b") == "a_b"  # NFKC folds the full-width slash first
    assert safe_name("study ") == "study_"
    assert safe_name("résumé") == "resume"
    assert safe_name("sweep-1.v2") == "sweep-1.v2"
    long = safe_name("x" * 300)
    assert len(long) == 120 and long != safe_name("x" * 299)  # cut names keep a hash
    assert safe_name("..") != safe_name(".") != safe_name("")


def test_assign_folder_names_collisions_get_hash_suffixes():
    names = ["a/b", "a_b", "A_B", "plain", "x"]
    folders = assign_folder_names(names)
    assert folders["plain"] == "plain" and folders["x"] == "x"
    clashing = [folders[n] for n in ("a/b", "a_b", "A_B")]
    assert len({f.casefold() for f in clashing}) == 3
    assert all(f.rsplit("-", 1)[1].isalnum() and len(f.rsplit("-", 1)[1]) == 8 for f in clashing)
    # Same set, other order, other process: same answer.
    assert assign_folder_names(list(reversed(names))) == folders


def test_assign_folder_names_handles_suffix_lookalikes():
    first = assign_folder_names(["a/b", "a_b"])
    lookalike = first["a/b"]  # a study literally named like another's suffixed folder
    folders = assign_folder_names(["a/b", "a_b", lookalike])
    assert len({f.casefold() for f in folders.values()}) == 3


@pytest.mark.parametrize("relative", ["../x", "a/../../b", "/etc/passwd", "..", ".", ""])
def test_confine_refuses_escapes(relative, tmp_path):
    with pytest.raises(UnsafePathError, match="outside the output folder"):
        confine(tmp_path, relative)


def test_confine_refuses_nul_and_symlinks_out(tmp_path):
    with pytest.raises(UnsafePathError, match="NUL byte"):
        confine(tmp_path, "a\0b")
    outside = tmp_path.parent / f"{tmp_path.name}-victim"
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside the output folder"):
        confine(tmp_path, "link/file")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(UnsafePathError):
        confine(tmp_path, "loop/x")
    assert confine(tmp_path, "inner/ok") == tmp_path.resolve() / "inner" / "ok"
    assert issubclass(UnsafePathError, ExportError) and issubclass(ExportError, LedgerError)


@settings(max_examples=1000, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_random_unicode_names_never_resolve_outside(tmp_path_factory, name):
    base = tmp_path_factory.getbasetemp() / "confine-property"
    base.mkdir(exist_ok=True)
    root = base.resolve()
    target = confine(base, safe_name(name))
    assert target.parent == root
    try:
        raw = confine(base, name)  # the raw name: refused, or inside
    except UnsafePathError:
        return
    assert root in raw.parents
    assert os.path.commonpath([root, raw]) == os.fspath(root)


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize(
    "key",
    [
        "auth_token",
        "authToken",
        "token",
        "api_key",
        "apiKey",
        "APIKey",
        "apikey",
        "key",
        "ssh_key",
        "signingKey",
        "aws_secret_access_key",
        "client-secret",
        "db.password",
        "passwd",
        "Authorization",
        "credentials",
        "private_key",
    ],
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "key_dim", "key_size", "key_file", "num_keys", "tokenizer", "monkey", "lr"],
)
def test_kept_keys(key):
    assert not is_secret_key(key)


def test_redact_for_export_drops_canaries_and_keeps_hyperparameters():
    config = {
        "lr": 0.1,
        "max_tokens": 4096,
        "key_dim": 64,
        "auth_token": "CANARY-TOKEN-1",
        "db": {"url": "postgres://alice:CANARY-PW-2@db/x", "host": "db"},
        "headers": [{"Authorization": "Bearer CANARY-BEARER-3"}],
        "credentials": {"user": "bob", "pw": "CANARY-4"},
        "git_sha": "0123456789abcdef0123456789abcdef01234567",
        "weird.signing key": "CANARY-5",
    }
    out, paths = redact_for_export(config)
    assert out["lr"] == 0.1 and out["max_tokens"] == 4096 and out["key_dim"] == 64
    assert out["git_sha"] == config["git_sha"] and out["db"]["host"] == "db"
    assert out["auth_token"] == REDACTED and out["credentials"] == REDACTED
    assert out["db"]["url"] == REDACTED  # a URL with a password, under a harmless key
    assert "CANARY" not in repr(out)
    assert (
        paths
        == sorted(paths)
        == [
            "$.auth_token",
            "$.credentials",
            "$.db.url",
            "$.headers[0].Authorization",
            '$["weird.signing key"]',
        ]
    )
    assert config["auth_token"] == "CANARY-TOKEN-1"  # the input is not modified


def test_redact_user_patterns_and_opt_out():
    config = {"Experiment_Tag": "t", "nested": {"host_ip": "10.0.0.1", "port": 1}}
    out, paths = redact_for_export(config, extra_patterns=["*_IP", "experiment_*"])
    assert out == {"Experiment_Tag": REDACTED, "nested": {"host_ip": REDACTED, "port": 1}}
    assert paths == ["$.Experiment_Tag", "$.nested.host_ip"]
    out, paths = redact_for_export(config, ["$.nested.port"], root="$")
    assert out["nested"]["port"] == REDACTED and paths == ["$.nested.port"]
    same, none = redact_for_export({"token": "t"}, enabled=False)
    assert same == {"token": "t"} and none == []


def test_redaction_report_says_what_and_why():
    report = redaction_report(["$.b", "$.a", "$.a"], ["*_ip"])
    assert report["enabled"] is True
    assert report["paths"] == ["$.a", "$.b"]
    assert "token" in report["rules"]["secret_words"]
    assert report["rules"]["patterns"] == ["*_ip"]
    assert redaction_report([], enabled=False)["rules"]["secret_words"] == []
