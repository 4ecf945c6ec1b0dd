"""Readable event streams for the projection tests (wire-form dicts, as `ledger append`
takes them), and a fold from scratch that uses no checkpoint."""

from __future__ import annotations

from typing import Any


class Stream:
    """Builds one study's events in order: ``s.case("base")``, ``s.run(...)``..."""

    def __init__(self, study: str = "s") -> None:
        self.study = study
        self.events: list[dict[str, Any]] = []

    def _add(self, type_: str, **fields: Any) -> Stream:
        ev = {"type": type_, "study": self.study}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(ev)
        return self

    def created(self, objectives: list[tuple[str, str]] = (), **kw: Any) -> Stream:
        objs = [{"metric": m, "direction": d} for m, d in objectives] or None
        return self._add("study_created", objectives=objs, **kw)

    def case(
        self, case: str, parents: list[str] | None = None, stage: int | None = None, **kw: Any
    ) -> Stream:
        return self._add("case_created", case=case, parents=parents, stage=stage, **kw)

    def eco(
        self, case: str, parent: str, eco: str, eco_class: str | None = None, **kw: Any
    ) -> Stream:
        return self._add(
            "eco_applied", case=case, parent=parent, eco=eco, eco_class=eco_class, **kw
        )

    def start(self, case: str, run: str, **kw: Any) -> Stream:
        return self._add("run_started", case=case, run=run, **kw)

    def log(self, run: str, values: dict[str, float], step: int | None = None, **kw: Any) -> Stream:
        return self._add("metrics_recorded", run=run, values=values, step=step, **kw)

    def finish(self, run: str, status: str = "completed", **kw: Any) -> Stream:
        return self._add("run_finished", run=run, status=status, **kw)

    def invalidate(self, run: str, reason: str, **kw: Any) -> Stream:
        return self._add("run_invalidated", run=run, reason=reason, **kw)

    def artifact(self, run: str, name: str, uri: str, **kw: Any) -> Stream:
        return self._add("artifact_recorded", run=run, name=name, uri=uri, **kw)

    def select(self, stage: int, survivors: list[str], **kw: Any) -> Stream:
        return self._add("selection_recorded", stage=stage, survivors=survivors, **kw)

    def run(
        self,
        case: str,
        run: str,
        finals: dict[str, float] | None = None,
        status: str | None = "completed",
        **kw: Any,
    ) -> Stream:
        """A whole run: started, its final values, finished with ``status``."""
        self.start(case, run, **kw)
        if finals:
            self.log(run, finals)
        if status is not None:
            self.finish(run, status)
        return self


def fold(ledger: Any, projection: Any, until: int | None = None, one_by_one: bool = False) -> Any:
    """The reference: every event from seq 1, no checkpoint, no build()."""
    for batch in ledger.read_batches(0, until):
        if one_by_one:
            for env in batch:
                projection.apply(env)
        else:
            projection.apply_batch(batch)
    return projection
