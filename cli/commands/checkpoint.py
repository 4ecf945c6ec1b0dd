"""checkpoint: save every built-in projection in the ledger, so later reads start there.

Also home of ``reported_warnings``, which the projection commands share: a checkpoint
that was ignored is worth one ``warning:`` line on stderr, never a Python warning dump.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from cli.options import as_of_option, json_option, open_ledger
from cli.output import echo_json, table


@contextmanager
def reported_warnings() -> Iterator[None]:
    """Print warnings raised inside (ignored checkpoints) as ``warning: ...`` on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                text = str(w.message)
                if text not in seen:
                    seen.add(text)
                    click.echo(f"warning: {text}", err=True)


@click.command()
@as_of_option
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    help="Afterwards keep only the newest N checkpoints of each projection.",
)
@click.option("--list", "list_only", is_flag=True, help="List stored checkpoints; write nothing.")
@json_option
@click.pass_context
def checkpoint(
    ctx: click.Context, as_of: int | None, keep: int | None, list_only: bool, as_json: bool
) -> None:
    """Save a checkpoint of every built-in projection (dag, runs, metrics, selections).

    Later reads (dag, rank, exports) restore the newest checkpoint at or before the seq
    they ask for and replay only the events after it. A checkpoint is trusted only when
    its projection version, the log's hash at its seq and its payload digest all check
    out; otherwise it is ignored with a warning. With --list, show the stored ones and
    whether each can be trusted (read-only).

    \b
    Example:
      ledger checkpoint
      ledger checkpoint --as-of 1200 --keep 3
      ledger checkpoint --list --json
    """
    from projections.builtins import builtin_projections, write_checkpoints
    from projections.checkpoints import check_checkpoints

    if list_only:
        ledger = open_ledger(ctx)
        versions = {p.name: p.version for p in builtin_projections()}
        items = check_checkpoints(ledger, versions)
        rows = []
        for header, name, seq, problem in items:
            rows.append(
                {
                    "name": name,
                    "seq": seq,
                    "version": header.version if header else None,
                    "bytes": header.size if header else None,
                    "hash": header.hash if header else None,
                    "ok": problem is None,
                    "problem": problem,
                }
            )
        if as_json:
            echo_json({"head_seq": ledger.head.seq, "checkpoints": rows})
            return
        if not rows:
            click.echo("no checkpoints stored")
            return
        click.echo(
            table(
                ["projection", "seq", "version", "bytes", "status"],
                [
                    [r["name"], r["seq"], r["version"], r["bytes"], r["problem"] or "ok"]
                    for r in rows
                ],
            )
        )
        return
    ledger = open_ledger(ctx, readonly=False)
    with reported_warnings():
        headers = write_checkpoints(ledger, as_of=as_of, keep=keep)
    seq = headers[0].seq
    if as_json:
        echo_json(
            {
                "seq": seq,
                "hash": headers[0].hash,
                "checkpoints": [
                    {"name": h.name, "version": h.version, "seq": h.seq, "bytes": h.size}
                    for h in headers
                ],
            }
        )
        return
    click.echo(f"checkpoint at seq {seq} (log hash {headers[0].hash[:16]})")
    click.echo(
        table(["projection", "version", "bytes"], [[h.name, h.version, h.size] for h in headers])
    )
