"""The event types (docs/architecture.md, Events) as one msgspec tagged union.

Two families share every tag and field. The plain classes (``CaseCreated``...) are what
the API takes and what stored bytes decode to; they ignore unknown fields so that a newer
ledger's extra optional fields do not break an older reader. The ``Strict*`` subclasses
forbid unknown fields and are used to decode *input*, where a misspelt field must be an
error that names it. Encoding either gives the same bytes.

What the ledger assigns (seq, id, ts, hash) lives in the ``Envelope`` around the
client's event; ``id`` and ``ts`` appear on the event only as the client's optional
input and are moved into the envelope at append.
"""

# No ``from __future__ import annotations`` here, on purpose: msgspec resolves string
# annotations with ``get_type_hints`` (an eval per field and per class) the first time a
# decoder sees these classes, ~4.5 ms at every start; real annotations cost ~0.4 ms at
# class creation. Everything below is valid at run time on Python 3.10 (``Union``, not ``|``).
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, cast

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "EVENT_TYPES",
    "I64_MAX",
    "I64_MIN",
    "U64_MAX",
    "STATUSES",
    "ArtifactRecorded",
    "CaseCreated",
    "EcoApplied",
    "Envelope",
    "Event",
    "InputEnvelope",
    "InputEvent",
    "MetricsRecorded",
    "Objective",
    "RunFinished",
    "RunInvalidated",
    "RunStarted",
    "SelectionRecorded",
    "StudyCreated",
]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1
Name = Annotated[str, Meta(min_length=1, max_length=256)]
NonNegative = Annotated[int, Meta(ge=0)]
Number = Union[int, float]
# Input only (the Strict* classes): what projections hold exactly. A step, stage or
# index is a signed 64-bit int >= 0 (a step past 2**63 - 1 was once accepted and then
# clamped); an int metric value a signed 64-bit int. Stored events keep the looser
# types above, so an old ledger that holds a larger value still reads.
Index64 = Annotated[int, Meta(ge=0, le=I64_MAX)]
Int64 = Annotated[int, Meta(ge=I64_MIN, le=I64_MAX)]
Number64 = Union[Int64, float]
Timestamp = Union[str, float, None]
Status = Literal["completed", "failed", "pruned", "timeout", "cancelled", "interrupted"]

# The free-form fields of each event type: any JSON value (nesting, size and JSON-ness
# are checked at the call by ``ledger.inputs`` and again at append by ``ledger.prepare``).
FREE_FORM: dict[str, tuple[str, ...]] = {
    "study_created": ("config",),
    "case_created": ("params",),
    "eco_applied": ("params",),
    "run_started": ("config", "provenance"),
    "run_finished": ("resources",),
    "selection_recorded": ("policy",),
}

STATUSES: tuple[str, ...] = (
    "completed",
    "failed",
    "pruned",
    "timeout",
    "cancelled",
    "interrupted",
)


class Objective(Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    metric: Name
    direction: Literal["min", "max"]


class _Base(Struct, tag_field="type", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = ""
    study: Name
    id: Union[Name, None] = None
    ts: Timestamp = None


class StudyCreated(_Base, tag="study_created", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "study_created"
    config: Union[dict[str, Any], None] = None
    description: Union[str, None] = None
    objectives: Union[list[Objective], None] = None
    tags: Union[list[str], None] = None


class CaseCreated(_Base, tag="case_created", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "case_created"
    case: Name
    parents: Union[list[Name], None] = None
    stage: NonNegative = 0
    params: Union[dict[str, Any], None] = None


class EcoApplied(_Base, tag="eco_applied", kw_only=True, omit_defaults=True, gc=False):
    """A case made by applying an ECO to one parent (``parent``) or to several
    (``parents``, a list: a merge of survivors); every edge is labelled with the ECO.
    Exactly one of the two is given (a rule at append). ``parents`` is the newer,
    optional field, last: an event without it encodes exactly as before it existed."""

    TYPE: ClassVar[str] = "eco_applied"
    case: Name
    parent: Union[Name, None] = None
    eco: Name
    eco_class: Union[str, None] = None
    params: Union[dict[str, Any], None] = None
    stage: Union[NonNegative, None] = None
    parents: Union[list[Name], None] = None

    @property
    def parent_ids(self) -> list[str]:
        """The parents, whichever field names them."""
        if self.parents is not None:
            return list(self.parents)
        return [] if self.parent is None else [self.parent]


class RunStarted(_Base, tag="run_started", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "run_started"
    case: Name
    run: Name
    attempt: Union[NonNegative, None] = None
    seed: Union[int, None] = None
    host: Union[str, None] = None
    pid: Union[int, None] = None
    config: Union[dict[str, Any], None] = None
    provenance: Union[dict[str, Any], None] = None


class MetricsRecorded(_Base, tag="metrics_recorded", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "metrics_recorded"
    run: Name
    values: dict[str, Number]
    step: Union[NonNegative, None] = None


class RunFinished(_Base, tag="run_finished", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "run_finished"
    run: Name
    status: Status
    error: Union[str, None] = None
    resources: Union[dict[str, Any], None] = None


class RunInvalidated(_Base, tag="run_invalidated", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "run_invalidated"
    run: Name
    reason: str


class ArtifactRecorded(_Base, tag="artifact_recorded", kw_only=True, omit_defaults=True, gc=False):
    TYPE: ClassVar[str] = "artifact_recorded"
    run: Name
    name: Name
    uri: str
    sha256: Union[str, None] = None
    bytes: Union[NonNegative, None] = None
    media_type: Union[str, None] = None


class SelectionRecorded(
    _Base, tag="selection_recorded", kw_only=True, omit_defaults=True, gc=False
):
    TYPE: ClassVar[str] = "selection_recorded"
    stage: NonNegative
    survivors: list[Name]
    policy: Union[dict[str, Any], None] = None
    as_of: Union[NonNegative, None] = None


Event = Union[
    StudyCreated,
    CaseCreated,
    EcoApplied,
    RunStarted,
    MetricsRecorded,
    RunFinished,
    RunInvalidated,
    ArtifactRecorded,
    SelectionRecorded,
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        StudyCreated,
        CaseCreated,
        EcoApplied,
        RunStarted,
        MetricsRecorded,
        RunFinished,
        RunInvalidated,
        ArtifactRecorded,
        SelectionRecorded,
    )
}


_STRICT_FIELDS: dict[str, list[Any]] = {
    "case_created": [("stage", Index64, 0)],
    "eco_applied": [("stage", Union[Index64, None], None)],
    "run_started": [
        ("attempt", Union[Index64, None], None),
        ("pid", Union[Int64, None], None),
    ],
    "metrics_recorded": [
        ("values", dict[str, Number64]),
        ("step", Union[Index64, None], None),
    ],
    "artifact_recorded": [("bytes", Union[Index64, None], None)],
    "selection_recorded": [
        ("stage", Index64),
        ("as_of", Union[Index64, None], None),
    ],
}
"""Fields whose input type is narrower than the stored one. A redefined field keeps
its place, so a strict struct encodes to the same bytes as the plain one."""


def _strict(cls: type[Event]) -> type[Event]:
    """A subclass of ``cls`` that refuses unknown fields (and the out-of-range ints of
    ``_STRICT_FIELDS``), for decoding input."""
    strict = msgspec.defstruct(
        "Strict" + cls.__name__,
        _STRICT_FIELDS.get(cls.TYPE, []),
        bases=(cls,),
        tag=cls.TYPE,
        kw_only=True,
        omit_defaults=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    # defstruct is typed as making some Struct; this one subclasses ``cls`` (bases).
    return cast("type[Event]", strict)


_STRICT = {name: _strict(cls) for name, cls in EVENT_TYPES.items()}
if TYPE_CHECKING:
    # A union built at run time is no static type. Every Strict* class subclasses the
    # plain class of its tag, so to a type checker an input event is an ``Event``.
    InputEvent = Event
else:
    InputEvent = Union[tuple(_STRICT.values())]


def strict_class(tag: str) -> type:
    """The input (strict) class of an event type. Instances of it are trusted as
    validated by ``Ledger.append``: build one only from values you checked yourself."""
    return _STRICT[tag]


class Envelope(Struct, array_like=True, gc=False):
    """A stored event: what the ledger assigned, around what the client sent.

    ``ts`` is integer microseconds since the Unix epoch, UTC. ``hash`` is not stored with
    the event; readers that verify fill it in.
    """

    seq: int
    id: str
    ts: int
    event: Event
    hash: Union[bytes, None] = None

    @property
    def type(self) -> str:
        return self.event.TYPE

    @property
    def study(self) -> str:
        return self.event.study


# A stored envelope whose event is decoded by the input (strict) classes: what a sync
# reads from its source. Decoding a stored block this way checks every input rule of its
# events in the same msgspec call that reads them, so the target's ``append`` trusts
# them as it trusts any strict struct (``strict_class``) instead of re-encoding and
# re-decoding each one. The redefined ``event`` keeps its place: the bytes decode alike.
if TYPE_CHECKING:
    InputEnvelope = Envelope  # to a type checker, as ``InputEvent`` is an ``Event``
else:
    InputEnvelope = msgspec.defstruct(
        "InputEnvelope", [("event", InputEvent)], bases=(Envelope,), array_like=True, gc=False
    )
