"""The events of a case and of a run imported from a CSV file, with ids from the source.

Ids are ``csv:<study>:case:<case>`` and ``csv:<study>:run:<run>:<part>``, so importing
the same file again appends nothing. A run is one row (wide, ``sample_as="run"``), the
rows of its steps (wide, ``sample_as="step"``) or the rows of its values (long); all
three are written here by one function, so a run reads the same whichever shape of
file it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .common import bounded_id, stable_id


def case_created(
    study: str, case: str, stage: int = 0, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "case_created", "study": study, "case": case}
    if stage:
        ev["stage"] = stage
    if params:
        ev["params"] = params
    ev["id"] = stable_id("csv", study, "case", case)
    return ev


def run_events(
    out: list[dict[str, Any]],
    study: str,
    case: str,
    run: str,
    *,
    config: dict[str, Any] | None = None,
    ts: str | None = None,
    steps: Iterable[tuple[int, dict[str, Any], str | None]] = (),
    final: dict[str, Any] | None = None,
    status: str | None = None,
    error: str | None = None,
    ended: str | None = None,
) -> None:
    """Append a run's events to ``out``: started (at ``ts``), its stepped values (each
    ``(step, values, ts)``; a step without values writes nothing), its final values
    (at ``ts``) and, unless ``status`` is None, finished (at ``ended``).

    Appends to a list rather than returning one: a wide file calls this once per row.
    """
    base = f"csv:{study}:run:{run}:"
    ev: dict[str, Any] = {"type": "run_started", "study": study, "case": case, "run": run}
    if config:
        ev["config"] = config
    ev["id"] = bounded_id(base + "started")
    if ts:
        ev["ts"] = ts
    out.append(ev)
    for st, values, at in steps:
        if values:
            m: dict[str, Any] = {
                "type": "metrics_recorded",
                "study": study,
                "run": run,
                "step": st,
                "values": values,
                "id": bounded_id(f"{base}step:{st}"),
            }
            if at:
                m["ts"] = at
            out.append(m)
    if final:
        m = {
            "type": "metrics_recorded",
            "study": study,
            "run": run,
            "values": final,
            "id": bounded_id(base + "final"),
        }
        if ts:
            m["ts"] = ts
        out.append(m)
    if status is None:
        return
    fin: dict[str, Any] = {"type": "run_finished", "study": study, "run": run, "status": status}
    if error is not None:
        fin["error"] = error
    fin["id"] = bounded_id(base + "finished")
    if ended:
        fin["ts"] = ended
    out.append(fin)
