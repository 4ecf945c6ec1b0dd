"""The append-time rules (docs/architecture.md, Append-time rules), checked inside the write transaction.

``RefState`` is a read-through cache over the ``refs`` table (studies, cases, runs) for
one transaction: the rules read what earlier batches and earlier events of this batch
established, and the changes are written back when the batch commits. Nothing here does
I/O of its own; the store hands in ``get``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgspec

try:  # the object hashlib exports, without hashlib loading OpenSSL for it (~4.5 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

from .errors import RuleViolation, RunClosed
from .events import (
    ArtifactRecorded,
    CaseCreated,
    EcoApplied,
    MetricsRecorded,
    RunFinished,
    RunInvalidated,
    RunStarted,
    SelectionRecorded,
    StudyCreated,
)

__all__ = ["DUPLICATE", "RefState", "check_event", "check_names", "ref_keys"]

DUPLICATE = object()
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.decode


@lru_cache(maxsize=65536)
def h16(*parts: str) -> bytes:
    return blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class RefState:
    """Studies, cases and runs as the rules need them: ``[digest, seq]`` per study,
    ``[stage, seq]`` per case, ``[case, closed_seq, status, invalidated_seq]`` per run."""

    __slots__ = ("_get", "cache", "dirty", "new_studies", "runs")

    def __init__(self, get: Callable[[bytes], bytes | None]) -> None:
        self._get = get
        self.cache: dict[bytes, Any] = {}
        self.dirty: dict[bytes, Any] = {}
        self.new_studies: dict[bytes, str] = {}
        self.runs: dict[tuple[str, str], Any] = {}

    def _lookup(self, key: bytes) -> Any:
        try:
            return self.cache[key]
        except KeyError:
            raw = self._get(key)
            value = None if raw is None else _unpack(bytes(raw))
            self.cache[key] = value
            return value

    def _set(self, key: bytes, value: Any) -> None:
        self.cache[key] = value
        self.dirty[key] = value

    def study(self, study: str) -> Any:
        return self._lookup(b"S" + h16(study))

    def case(self, study: str, case: str) -> Any:
        return self._lookup(b"C" + h16(study, case))

    def run(self, study: str, run: str) -> Any:
        # Metrics events look their run up once each: memoise the key derivation too.
        try:
            return self.runs[(study, run)]
        except KeyError:
            value = self.runs[(study, run)] = self._lookup(b"R" + h16(study, run))
            return value

    def set_run(self, study: str, run: str, value: Any) -> None:
        self.runs[(study, run)] = value
        self._set(b"R" + h16(study, run), value)

    def writes(self) -> list[tuple[bytes, bytes]]:
        out = [(k, _pack(v)) for k, v in self.dirty.items()]
        out.extend((b"N" + k[1:], name.encode()) for k, name in self.new_studies.items())
        out.sort()
        return out


def ref_keys(events: Any) -> set[bytes]:
    """Every reference-state key the rules may read for ``events``: a backend behind a
    network fetches them in one round trip before the rules run (a key missed here is
    still read on demand, so this only has to be a good guess)."""
    pairs = {(ev.study, ev.run) for ev in events if ev.TYPE == "metrics_recorded"}
    keys = {b"R" + h16(study, run) for study, run in pairs}
    keys.update(b"S" + h16(study) for study in {study for study, _ in pairs})
    for ev in events:
        if ev.TYPE == "metrics_recorded":
            continue
        study = ev.study
        keys.add(b"S" + h16(study))
        run = getattr(ev, "run", None)
        if run is not None:
            keys.add(b"R" + h16(study, run))
        cases = [getattr(ev, "case", None), getattr(ev, "parent", None)]
        cases.extend(getattr(ev, "parents", None) or ())
        cases.extend(getattr(ev, "survivors", None) or ())
        keys.update(b"C" + h16(study, case) for case in cases if isinstance(case, str))
    return keys


_NAME_FIELDS = {
    "study_created": ("study",),
    "case_created": ("study", "case"),
    "eco_applied": ("study", "case"),
    "run_started": ("study", "case", "run"),
    "metrics_recorded": ("study", "run"),
    "run_finished": ("study", "run"),
    "run_invalidated": ("study", "run"),
    "artifact_recorded": ("study", "run"),
    "selection_recorded": ("study",),
}


_LIST_FIELDS = {
    "case_created": ("parents",),
    "eco_applied": ("parents",),
    "selection_recorded": ("survivors",),
}


def check_names(ev: Any, seen: set[str] | None = None) -> None:
    """Ids are printable (no control characters); msgspec already bounds their length.
    An ``eco_applied`` names its parents one way: ``parent``, or ``parents`` (a list of
    distinct cases), not both.

    ``seen`` remembers names already found printable, so a batch of metrics for a few
    runs checks each name once.
    """
    tag = ev.TYPE
    for field in _NAME_FIELDS[tag]:
        value = getattr(ev, field)
        if seen is not None:
            if value in seen:
                continue
            seen.add(value)
        _printable(ev, field, value)
    if tag == "eco_applied":
        _check_eco_parents(ev)
        if ev.parent is not None:
            _printable(ev, "parent", ev.parent)
    for field in _LIST_FIELDS.get(tag, ()):
        for i, value in enumerate(getattr(ev, field, None) or ()):
            _printable(ev, f"{field}[{i}]", value)


def _printable(ev: Any, field: str, value: str) -> None:
    if not value.isprintable():
        raise RuleViolation(
            f"`{field}` {value!r} contains control characters; ids are 1-256 printable characters",
            event_type=ev.TYPE,
            field=field,
        )


def _check_eco_parents(ev: Any) -> None:
    if ev.parent is not None and ev.parents is not None:
        raise _fail(ev, "give `parent` or `parents` (a list), not both", "parents")
    if ev.parent is None and ev.parents is None:
        raise _fail(ev, "missing field `parent` (or `parents`, a list)", "parent")
    if ev.parents is not None:
        if not ev.parents:
            raise _fail(ev, "`parents` is empty; an ECO applies to at least one case", "parents")
        seen: set[str] = set()
        for i, parent in enumerate(ev.parents):
            if parent in seen:
                raise _fail(ev, f"`parents` names {parent!r} twice", f"parents[{i}]")
            seen.add(parent)


def _fail(ev: Any, message: str, field: str | None = None) -> RuleViolation:
    return RuleViolation(message, event_type=ev.TYPE, field=field)


def _need_study(ev: Any, state: RefState) -> None:
    if state.study(ev.study) is None:
        raise _fail(
            ev,
            f"study {ev.study!r} does not exist; append its study_created first",
            "study",
        )


def _need_open_run(ev: Any, state: RefState, *, allow_closed: bool = False) -> list[Any]:
    info = state.run(ev.study, ev.run)
    if info is None:
        _need_study(ev, state)
        raise _fail(
            ev,
            f"run {ev.run!r} does not exist in study {ev.study!r}; append its run_started first",
            "run",
        )
    if info[1] and not allow_closed:
        err = RunClosed(
            f"run {ev.run!r} is already finished (run_finished with status {info[2]!r} at "
            f"seq {info[1]})",
            event_type=ev.TYPE,
            field="run",
        )
        err.run, err.closed_seq = ev.run, info[1]
        raise err
    return info


def _check_study(ev: StudyCreated, seq: int, digest: bytes, state: RefState) -> Any:
    info = state.study(ev.study)
    if info is not None:
        if info[0] == digest:
            return DUPLICATE
        raise _fail(
            ev,
            f"study {ev.study!r} already exists (created at seq {info[1]}) with other "
            "content; a study is created once",
            "study",
        )
    key = b"S" + h16(ev.study)
    state._set(key, [digest, seq])
    state.new_studies[key] = ev.study
    return None


def _new_case(ev: Any, seq: int, state: RefState, stage: int) -> None:
    existing = state.case(ev.study, ev.case)
    if existing is not None:
        raise _fail(
            ev,
            f"case {ev.case!r} already exists in study {ev.study!r} (created at seq "
            f"{existing[1]}); case ids are unique within a study",
            "case",
        )
    state._set(b"C" + h16(ev.study, ev.case), [stage, seq])


def _check_case(ev: CaseCreated, seq: int, digest: bytes, state: RefState) -> None:
    _need_study(ev, state)
    for i, parent in enumerate(ev.parents or ()):
        if parent == ev.case:
            raise _fail(ev, f"case {ev.case!r} lists itself as a parent", f"parents[{i}]")
        if state.case(ev.study, parent) is None:
            raise _fail(
                ev,
                f"parent case {parent!r} does not exist in study {ev.study!r}; "
                "create parents before their children",
                f"parents[{i}]",
            )
    _new_case(ev, seq, state, ev.stage)


def _check_eco(ev: EcoApplied, seq: int, digest: bytes, state: RefState) -> None:
    """Every parent exists (and is not the case itself); the stage defaults to the
    parents' highest + 1."""
    _need_study(ev, state)
    _check_eco_parents(ev)
    several = ev.parents is not None
    stages = []
    for i, name in enumerate(ev.parent_ids):
        field = f"parents[{i}]" if several else "parent"
        if name == ev.case:
            raise _fail(ev, f"case {ev.case!r} cannot be its own parent", field)
        parent = state.case(ev.study, name)
        if parent is None:
            raise _fail(
                ev,
                f"parent case {name!r} does not exist in study {ev.study!r}; "
                "create parents before their children",
                field,
            )
        stages.append(parent[0])
    _new_case(ev, seq, state, max(stages) + 1 if ev.stage is None else ev.stage)


def _check_run_started(ev: RunStarted, seq: int, digest: bytes, state: RefState) -> None:
    _need_study(ev, state)
    if state.case(ev.study, ev.case) is None:
        raise _fail(
            ev,
            f"case {ev.case!r} does not exist in study {ev.study!r}; append its "
            "case_created (or eco_applied) first",
            "case",
        )
    existing = state.run(ev.study, ev.run)
    if existing is not None:
        raise _fail(
            ev,
            f"run {ev.run!r} already exists in study {ev.study!r} (case {existing[0]!r}); "
            "run ids are unique within a study",
            "run",
        )
    state.set_run(ev.study, ev.run, [ev.case, 0, None, 0])


def _check_metrics(ev: MetricsRecorded, seq: int, digest: bytes, state: RefState) -> None:
    _need_open_run(ev, state)


def _check_finished(ev: RunFinished, seq: int, digest: bytes, state: RefState) -> None:
    info = _need_open_run(ev, state)
    state.set_run(ev.study, ev.run, [info[0], seq, ev.status, info[3]])


def _check_invalidated(ev: RunInvalidated, seq: int, digest: bytes, state: RefState) -> None:
    info = _need_open_run(ev, state, allow_closed=True)
    if not info[1]:
        raise _fail(
            ev,
            f"run {ev.run!r} is not finished; only a finished run can be invalidated "
            "(finish it first, e.g. with status 'cancelled')",
            "run",
        )
    if info[3]:
        raise _fail(ev, f"run {ev.run!r} was already invalidated at seq {info[3]}", "run")
    state.set_run(ev.study, ev.run, [info[0], info[1], info[2], seq])


def _check_artifact(ev: ArtifactRecorded, seq: int, digest: bytes, state: RefState) -> None:
    _need_open_run(ev, state, allow_closed=True)


def _check_selection(ev: SelectionRecorded, seq: int, digest: bytes, state: RefState) -> None:
    _need_study(ev, state)
    for i, case in enumerate(ev.survivors):
        if state.case(ev.study, case) is None:
            raise _fail(
                ev,
                f"survivor {case!r} is not a case of study {ev.study!r}",
                f"survivors[{i}]",
            )
    if ev.as_of is not None and ev.as_of >= seq:
        raise _fail(
            ev,
            f"as_of {ev.as_of} is not before this event's seq {seq}; a decision is made at a "
            "position already in the log",
            "as_of",
        )


_CHECKS: dict[str, Callable[..., Any]] = {
    "study_created": _check_study,
    "case_created": _check_case,
    "eco_applied": _check_eco,
    "run_started": _check_run_started,
    "metrics_recorded": _check_metrics,
    "run_finished": _check_finished,
    "run_invalidated": _check_invalidated,
    "artifact_recorded": _check_artifact,
    "selection_recorded": _check_selection,
}


def check_event(ev: Any, seq: int, digest: bytes, state: RefState) -> Any:
    """Apply one event's rule; returns ``DUPLICATE`` when the event is a no-op."""
    return _CHECKS[ev.TYPE](ev, seq, digest, state)
