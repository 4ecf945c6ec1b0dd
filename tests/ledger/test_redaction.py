"""Secret redaction at append (docs/architecture.md, Append-time rules; docs/reliability.md, pitfall 13): what is redacted, what is
kept, that the scan stays linear, and that the stored event never holds the secret."""

from __future__ import annotations

import copy
import time

import pytest

from ledger import Ledger
from ledger.redact import REDACTED, is_secret_key, looks_like_secret, redact, redact_fields

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"  # a git commit: 40 hex digits

SECRET_KEYS = [
    "api_key",
    "apiKey",
    "API-KEY",
    "x-api-key",
    "apikey",
    "secret",
    "client_secret",
    "AWS_SECRET_ACCESS_KEY",
    "aws_access_key_id",  # access + key
    "password",
    "db_password",
    "passwd",
    "passphrase",
    "token",
    "auth_token",
    "AuthToken",
    "refresh-token",
    "hf.token",
    "Authorization",
    "credential",
    "credentials",
    "private_key",
    "privateKey",
]
KEPT_KEYS = [
    "max_tokens",
    "tokens",
    "tokenizer",
    "num_tokens_per_batch",
    "key_dim",
    "key",
    "keys",
    "monkey",
    "secretary_count",
    "pass_rate",
    "author",
    "authority",
    "git_sha",
    "commit",
    "seed",
]

# One canary per credential shape (gitleaks-derived); each must be redacted as a value
# under an ordinary key.
SHAPED = {
    "aws": "AKIAQCANARY000000001",
    "github_classic": "ghp_CANARYcanaryCANARYcanaryCANARYcanary12",
    "github_fine": "github_pat_11CANARY0000000000000000_abcdefghijklmnopqrstuv",
    "gitlab": "glpat-CANARYcanaryCANARY12",
    "slack_token": "xoxb-1234567890-CANARYcanary",
    "slack_webhook": "https://hooks.slack.com/services/T0000CANARY/B0000CANARY/XXXXXXXXCANARY",
    "openai": "sk-proj-CANARYcanary1234567890abcdefgh",
    "anthropic": "sk-ant-api03-CANARYcanary1234567890abcdefgh",
    "stripe": "sk_live_CANARYcanary12345678",
    "google": "AIzaSyCANARYcanaryCANARYcanary123456789",
    "huggingface": "hf_CANARYcanaryCANARYcanaryCANARYcan",
    "npm": "npm_CANARYcanaryCANARYcanaryCANARYcan123",
    "pypi": "pypi-AgEIcHlwaS5vcmc" + "CANARY" * 10,
    "sendgrid": "SG.CANARYcanaryCANARYcana.CANARYcanaryCANARYcanaryCANARYcanaryCANARYc",
    "databricks": "dapi0123456789abcdef0123456789abcdef",
    "digitalocean": "dop_v1_" + "c0ffee" * 10 + "abcd",
    "shopify": "shpat_0123456789abcdef0123456789abcdef",
    "azure": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "Q0FOQVJZ" * 8 + "==",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.CANARYsignature123",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpCANARY\n-----END RSA PRIVATE KEY-----",
    "url_password": "postgresql://ml:CANARYpw@db.internal:5432/runs",
    "bearer": "Bearer CANARYtoken1234567890",
    "basic": "Basic Q0FOQVJZOnB3ZA==",
    "cli_assignment": "python train.py --wandb-api-key=CANARY123 --lr 0.1",
    "header_line": "Authorization: Bearer CANARY123456",
    "json_in_string": '{"password": "CANARYpw"}',
}
ORDINARY = [
    SHA,
    "https://github.com/org/repo/commit/" + SHA,
    "s3://bucket/path/to/model.pt",
    "Token embeddings are shared",
    "sk-learn-compatible-estimator",
    "max_tokens=1024 lr=0.1 key_dim=64",
    "see http://a.b/c?x=1:2@3",
    "2026-01-31T12:00:00Z",
    "user@example.com",
    "key_dim: 64",
    "",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key):
    assert is_secret_key(key)
    out, found = redact({key: "hunter2", "lr": 0.1})
    assert out == {key: REDACTED, "lr": 0.1} and found == [key]


@pytest.mark.parametrize("key", KEPT_KEYS)
def test_ordinary_keys_are_kept(key):
    assert not is_secret_key(key)
    assert redact({key: SHA}) == ({key: SHA}, [])


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_credential_shapes_are_redacted_under_any_key(name):
    value = SHAPED[name]
    assert looks_like_secret(value), name
    out, found = redact({"notes": [value]})
    assert out == {"notes": [REDACTED]} and found == ["notes[0]"]


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values_are_kept(value):
    assert not looks_like_secret(value)
    assert redact({"v": value}) == ({"v": value}, [])


def test_value_after_a_secret_flag_in_an_argv_list():
    argv = ["train.py", "--password", "hunter2", "--lr", "0.1", "--api-key", "--verbose"]
    out, found = redact({"argv": argv})
    assert out["argv"] == [
        "train.py",
        "--password",
        REDACTED,
        "--lr",
        "0.1",
        "--api-key",
        "--verbose",
    ]
    assert found == ["argv[2]"]


def test_input_is_not_modified_and_unchanged_objects_are_not_copied():
    config = {"a": {"b": [1, {"token": "x"}]}, "c": {"d": 1}}
    before = copy.deepcopy(config)
    out, found = redact(config)
    assert config == before
    assert out["a"]["b"][1] == {"token": REDACTED} and found == ["a.b[1].token"]
    assert out["c"] is config["c"]
    changed, found = redact_fields([("config", {"x": 1}), ("provenance", {"secret": "s"})])
    assert changed == {"provenance": {"secret": REDACTED}} and found == ["provenance.secret"]


def test_none_and_already_redacted_are_left_alone():
    assert redact({"token": None, "password": REDACTED}) == (
        {"token": None, "password": REDACTED},
        [],
    )


@pytest.mark.parametrize(
    "value",
    ["x" * (1 << 20), "://" * 300_000, "a b c " * 170_000, "eyJ" * 300_000, "sk-" * 300_000],
)
def test_scan_is_linear_on_large_values(value):
    started = time.process_time()
    redact({"blob": value})
    assert time.process_time() - started < 0.5, "secret scan too slow on a 1 MiB value"


def test_append_stores_the_redacted_event(tmp_path):
    events = [
        {
            "type": "study_created",
            "study": "s",
            "config": {"api_key": "CANARY-1", "max_tokens": 5, "commit": SHA},
        },
        {
            "type": "run_started",
            "study": "s",
            "case": "c",
            "run": "r",
            "provenance": {"command": "train --token=CANARY-2", "git_sha": SHA},
        },
    ]
    with Ledger(tmp_path / "l") as ledger:
        ledger.append(events[:1])
        ledger.append([{"type": "case_created", "study": "s", "case": "c"}])
        result = ledger.append(events[1:])
        assert result.redacted == ["event 1 of the batch: provenance.command"]
        stored = [e.event for e in ledger.read()]
    assert stored[0].config == {"api_key": REDACTED, "max_tokens": 5, "commit": SHA}
    assert stored[2].provenance == {"command": REDACTED, "git_sha": SHA}
    assert events[0]["config"]["api_key"] == "CANARY-1", "the caller's dict was modified"


def test_metric_names_are_never_touched(tmp_path):
    with Ledger(tmp_path / "l") as ledger:
        ledger.append(
            [
                {"type": "study_created", "study": "s"},
                {"type": "case_created", "study": "s", "case": "c"},
                {"type": "run_started", "study": "s", "case": "c", "run": "r"},
                {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"token": 1.5}},
            ]
        )
        assert list(ledger.read())[-1].event.values == {"token": 1.5}


def test_opt_out_keeps_secrets(tmp_path):
    with Ledger(tmp_path / "l") as ledger:
        result = ledger.append(
            [{"type": "study_created", "study": "s", "config": {"token": "t"}}], redact=False
        )
        assert result.redacted == []
        assert next(ledger.read()).event.config == {"token": "t"}


def test_the_id_is_derived_after_redaction(tmp_path):
    """Two configs that differ only in their secret are the same event once redacted."""
    with Ledger(tmp_path / "l") as ledger:
        ledger.append([{"type": "study_created", "study": "s", "config": {"token": "a"}}])
        again = ledger.append([{"type": "study_created", "study": "s", "config": {"token": "b"}}])
        assert (again.appended, again.duplicates) == (0, 1)


# -- issue 18: command lines kept as one string, and artifact URIs ---------------------------


@pytest.mark.parametrize(
    "value, stored",
    [
        ("train.py --password hunter2", "train.py --password [redacted]"),
        ("train.py --password hunter2 --lr 0.1", "train.py --password [redacted] --lr 0.1"),
        ("run --hf-token 'two words' -v", "run --hf-token [redacted] -v"),
        ('run --db-passwd "x y" --seed 1', "run --db-passwd [redacted] --seed 1"),
        ("run -api_key abc", "run -api_key [redacted]"),
        # as before: an assignment or a credential shape replaces the whole value
        ("train.py --token=hunter2 --lr 0.1", "[redacted]"),
        ("train.py --wandb-api-key=abc", "[redacted]"),
        # kept: no secret flag, or no value after it
        ("train.py --max-tokens 512 --lr 0.1", "train.py --max-tokens 512 --lr 0.1"),
        ("train.py --password --lr 0.1", "train.py --password --lr 0.1"),
        ("train.py -p hunter2", "train.py -p hunter2"),
        ("pass-through token count", "pass-through token count"),
    ],
)
def test_secret_flag_values_inside_a_command_line(ledger, value, stored):
    ledger.append(
        [
            {"type": "study_created", "study": "s", "config": {"cmd": value}},
            {"type": "case_created", "study": "s", "case": "c", "params": {"cmd": value}},
            {"type": "run_started", "study": "s", "case": "c", "run": "r",
             "provenance": {"cmd": value}},
        ]
    )  # fmt: skip
    study, case, run = (e.event for e in ledger.read())
    assert study.config["cmd"] == case.params["cmd"] == run.provenance["cmd"] == stored
    assert redact({"cmd": stored})[1] == []  # redacting again changes nothing


@pytest.mark.parametrize(
    "uri, stored",
    [
        ("https://user:s3cr3t@host/x", "https://user:[redacted]@host/x"),
        ("postgresql://ml:pw@db:5432/runs", "postgresql://ml:[redacted]@db:5432/runs"),
        (
            "https://b.s3.example/k?X-Amz-Credential=AK%2Fx&X-Amz-Signature=ab12&X-Amz-Date=1",
            "https://b.s3.example/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]"
            "&X-Amz-Date=1",
        ),
        ("https://h/f?sig=abc&sv=2020&token=t0k", "https://h/f?sig=[redacted]&sv=2020&token=[redacted]"),
        ("https://ghp_CANARYcanaryCANARYcanaryCANARYcanary12@github.com/o/r.git",
         "https://[redacted]@github.com/o/r.git"),
        ("file:///tmp/ckpt.pt", "file:///tmp/ckpt.pt"),
        ("s3://bucket/run-1/token-count.json", "s3://bucket/run-1/token-count.json"),
        ("https://x/commit/" + SHA, "https://x/commit/" + SHA),
    ],
)  # fmt: skip
def test_artifact_uris_keep_their_location_and_lose_their_credentials(ledger, uri, stored):
    ledger.append(
        [
            {"type": "study_created", "study": "s"},
            {"type": "case_created", "study": "s", "case": "c"},
            {"type": "run_started", "study": "s", "case": "c", "run": "r"},
        ]
    )
    result = ledger.append(
        [{"type": "artifact_recorded", "study": "s", "run": "r", "name": "a", "uri": uri}]
    )
    (env,) = list(ledger.read(3))
    assert env.event.uri == stored
    assert result.redacted == ([] if stored == uri else ["event 1 of the batch: uri"])
    kept = ledger.append(
        [{"type": "artifact_recorded", "study": "s", "run": "r", "name": "b", "uri": uri}],
        redact=False,
    )
    assert kept.redacted == [] and list(ledger.read(4))[0].event.uri == uri  # the opt-out


def test_the_recorder_redacts_command_lines_and_artifact_uris(tmp_path):
    from ledger import Recorder

    path = str(tmp_path / "r.ledger")
    with Recorder(path, study="s") as rec:
        with rec.case("c").run(provenance={"cmd": "train.py --password hunter2"}) as run:
            run.artifact("ckpt", "https://user:s3cr3t@host/x")
    assert b"hunter2" not in open(tmp_path / "r.ledger" / "data.mdb", "rb").read()
    assert b"s3cr3t" not in open(tmp_path / "r.ledger" / "data.mdb", "rb").read()
    with Ledger(path, create=False) as led:
        evs = {e.event.TYPE: e.event for e in led.read()}
    assert evs["run_started"].provenance == {"cmd": "train.py --password [redacted]"}
    assert evs["artifact_recorded"].uri == "https://user:[redacted]@host/x"
