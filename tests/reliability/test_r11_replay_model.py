"""R11 replay model: a hypothesis state machine appends, re-sends, reopens, "crashes"
mid-batch and grows the map, and after every step the ledger must equal a plain Python
model of it: same events in the same order, a head equal to the model's, hashes that
never change once returned, a chain that verifies, and chunked replay (a read
transaction per block) equal to replay in one read transaction.

Hook: the projection and export rules of docs/reliability.md R11 (``checkpoint_projection``,
``export``, and the invariant ``project(from_snapshot(k)) == project(full_replay) ==
project(model)``) belong to the projections and exports work. They plug in by
subclassing ``LedgerModel`` and adding rules that use ``self.ledger`` and
``self.model_events()``; ``test_r11_replay_model`` runs whatever class
``MACHINE`` names.
"""

from __future__ import annotations

import shutil
import tempfile
from hashlib import blake2b

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rel_common import fast_base, size

from ledger import Ledger
from ledger.blocks import seq_key
from ledger.codec import encode_canonical, event_from_obj

KIB = 1024


class LedgerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="ledger-r11-", dir=fast_base())
        self.path = f"{self.folder}/model.ledger"
        self.ledger = Ledger(self.path, map_size=64 * KIB)
        self.model: list[tuple[str, bytes]] = []  # (id, canonical bytes) per seq
        self.hashes: list[str] = []  # chain hash after each seq, as first observed
        self.sent: list[dict] = []  # every event dict appended, for re-sends
        self.cases: list[str] = []
        self.open_runs: list[str] = []
        self.counter = 0

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def model_events(self) -> list[tuple[str, bytes]]:
        return list(self.model)

    # -- events the append-time rules accept, given the model ----------------------------

    def _new_events(self, data: st.DataObject) -> list[dict]:
        events: list[dict] = []
        if not self.model and not any(e["type"] == "study_created" for e in events):
            events.append({"type": "study_created", "study": "s", "config": {"n": 1}})
        cases, runs = list(self.cases), list(self.open_runs)
        for _ in range(data.draw(st.integers(1, 8), label="events")):
            self.counter += 1
            n = self.counter
            kinds = ["case"] + (["run"] if cases else []) + (["metric", "finish"] if runs else [])
            kind = data.draw(st.sampled_from(kinds), label="kind")
            if kind == "case":
                event = {
                    "type": "case_created",
                    "study": "s",
                    "case": f"c{n}",
                    "params": {"lr": n / 7},
                }
                cases.append(f"c{n}")
            elif kind == "run":
                case = data.draw(st.sampled_from(cases), label="case")
                event = {"type": "run_started", "study": "s", "case": case, "run": f"r{n}"}
                runs.append(f"r{n}")
            elif kind == "metric":
                run = data.draw(st.sampled_from(runs), label="run")
                event = {
                    "type": "metrics_recorded",
                    "study": "s",
                    "run": run,
                    "values": {"loss": data.draw(st.floats(allow_nan=False), label="loss")},
                    "step": n,
                }
            else:
                run = data.draw(st.sampled_from(runs), label="run")
                event = {"type": "run_finished", "study": "s", "run": run, "status": "completed"}
                runs.remove(run)
            if data.draw(st.booleans(), label="explicit id"):
                event["id"] = f"x{n}"
            events.append(event)
        return events

    # -- rules ------------------------------------------------------------------------

    @rule(data=st.data())
    def append(self, data: st.DataObject) -> None:
        fresh = self._new_events(data)
        batch = list(fresh)
        resend = []
        if self.sent and data.draw(st.booleans(), label="re-send"):
            resend = data.draw(
                st.lists(st.sampled_from(self.sent), min_size=1, max_size=4), label="old"
            )
        for old in resend:  # already in the log: anywhere in the batch
            batch.insert(data.draw(st.integers(0, len(batch)), label="at"), dict(old))
        if fresh and data.draw(st.booleans(), label="twice in batch"):
            batch.append(dict(fresh[-1]))  # the same event twice in one batch
            resend.append(fresh[-1])
        result = self.ledger.append(batch)
        assert (result.appended, result.duplicates) == (len(fresh), len(resend))
        for event in fresh:
            content = encode_canonical(
                event_from_obj({k: v for k, v in event.items() if k != "id"})
            )
            self.model.append(
                (event.get("id") or blake2b(content, digest_size=16).hexdigest(), content)
            )
            self.sent.append(event)
            if event["type"] == "case_created":
                self.cases.append(event["case"])
            elif event["type"] == "run_started":
                self.open_runs.append(event["run"])
            elif event["type"] == "run_finished":
                self.open_runs.remove(event["run"])
        if result.appended:
            self.hashes.extend(
                self.ledger.hash_at(s) for s in range(len(self.hashes) + 1, len(self.model) + 1)
            )
        assert result.head_seq == len(self.model)
        assert result.head_hash == (self.hashes[-1] if self.hashes else "0" * 64)

    @rule()
    def reopen(self) -> None:
        self.ledger.close()
        self.ledger = Ledger(self.path, create=False)

    @rule(junk=st.binary(min_size=1, max_size=64))
    def crash_restart(self, junk: bytes) -> None:
        """A writer dies mid-batch: its transaction holds a block and a moved head but
        never commits, then the process restarts."""
        shared = self.ledger._store.env
        txn = shared.env.begin(write=True)
        txn.put(seq_key(len(self.model) + 1), junk, db=shared.dbs["events"])
        txn.put(b"head_seq", seq_key(len(self.model) + 9), db=shared.dbs["meta"])
        txn.abort()
        self.ledger.close()
        self.ledger = Ledger(self.path, create=False)

    @rule()
    def grow_map(self) -> None:
        before = self.ledger.storage_info()["map_size"]
        self.ledger._store.env.grow(None)
        assert self.ledger.storage_info()["map_size"] == 2 * before

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def verify(self, data: st.DataObject) -> None:
        report = self.ledger.verify()
        assert report.ok and report.events == len(self.model), report
        k = data.draw(st.integers(1, len(self.model)), label="seq")
        assert self.ledger.hash_at(k) == self.hashes[k - 1], "a returned hash changed"

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def head_equals_model(self) -> None:
        head = self.ledger.head
        assert head.seq == len(self.model)
        assert head.hash == (self.hashes[-1] if self.hashes else "0" * 64)

    @invariant()
    def replay_equals_model(self) -> None:
        single = [e for batch in self.ledger.read_batches(chunk_blocks=1 << 30) for e in batch]
        chunked = [e for batch in self.ledger.read_batches(chunk_blocks=1) for e in batch]
        got = [(e.id, encode_canonical(e.event)) for e in single]
        assert got == self.model
        assert [(e.seq, e.id, e.ts) for e in chunked] == [(e.seq, e.id, e.ts) for e in single]
        assert [encode_canonical(e.event) for e in chunked] == [c for _, c in got]
        assert self.ledger.storage_info()["ids"] == len(self.model)


MACHINE = LedgerModel


@pytest.mark.slow
def test_r11_replay_model(seed):
    machine = hypothesis_seed(seed)(type("Machine", (MACHINE,), {}))
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=size(100, 2000),
            stateful_step_count=size(20, 50),
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
