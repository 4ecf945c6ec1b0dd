"""init, append, log, status, verify: the commands over the event log itself."""

from __future__ import annotations

import sys
import time

import click

from cli.options import as_of_option, json_option, ledger_path, open_ledger
from cli.output import echo_json, table
from ledger import Head, Ledger, LedgerError
from ledger.codec import dumps, event_to_wire, format_ts
from ledger.events import EVENT_TYPES


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create an empty ledger (a no-op when one is already there).

    \b
    Example:
      ledger --ledger results.ledger init
      ledger --ledger 'postgresql://ledger@db.lab/results?schema=chip' init
    """
    ledger = open_ledger(ctx, create=True)
    head = ledger.head
    click.echo(f"ledger {ledger.ledger_id} at {ledger.path} (head seq {head.seq})")


@click.command()
@click.argument("source", default="-", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--keep-secrets", is_flag=True, help="Store secret-looking values as given.")
@click.option(
    "--expected-head",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse unless the head seq is still SEQ (optimistic concurrency).",
)
@json_option
@click.pass_context
def append(
    ctx: click.Context, source: str, keep_secrets: bool, expected_head: int | None, as_json: bool
) -> None:
    """Append events from a JSON Lines FILE (or - for stdin) as one atomic batch.

    Creates the ledger when it is missing. Re-appending the same events is a no-op
    (reported as duplicates); one bad line refuses the whole file, naming file:line.

    \b
    Example:
      ledger append events.jsonl
      ledger log --json | ledger --ledger copy.ledger append -
    """
    if source == "-":
        lines = sys.stdin.buffer.read().splitlines()
        name = "<stdin>"
    else:
        try:
            with open(source, "rb") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise LedgerError(f"cannot read {source}: {exc.strerror}") from None
        name = source
    ledger = open_ledger(ctx, create=True, readonly=False)
    result = ledger.append_jsonl(
        lines, source=name, redact=not keep_secrets, expected_head=expected_head
    )
    if as_json:
        echo_json(
            {
                "appended": result.appended,
                "duplicates": result.duplicates,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "redacted": result.redacted,
            }
        )
        return
    dup = f" ({result.duplicates} duplicates skipped)" if result.duplicates else ""
    click.echo(
        f"appended {result.appended} events{dup}; head {result.head_seq} {result.head_hash[:16]}"
    )
    for where in result.redacted:
        click.echo(f"redacted {where}", err=True)


def _num(v: float) -> str:
    if isinstance(v, float) and v != v:
        return "NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _summary(ev: object) -> str:
    tag = ev.TYPE  # type: ignore[attr-defined]
    get = ev.__getattribute__
    if tag == "metrics_recorded":
        vals = " ".join(f"{k}={_num(v)}" for k, v in sorted(get("values").items()))
        step = get("step")
        return f"run={get('run')} " + (f"step={step} " if step is not None else "final ") + vals
    if tag == "run_started":
        return f"case={get('case')} run={get('run')}"
    if tag == "run_finished":
        err = get("error")
        return f"run={get('run')} status={get('status')}" + (f" error={err!r}" if err else "")
    if tag == "case_created":
        parents = get("parents")
        return f"case={get('case')} stage={get('stage')}" + (
            f" parents={','.join(parents)}" if parents else ""
        )
    if tag == "eco_applied":
        parents = get("parents")
        named = f"parents={','.join(parents)}" if parents else f"parent={get('parent')}"
        return f"case={get('case')} {named} eco={get('eco')}"
    if tag in ("run_invalidated",):
        return f"run={get('run')} reason={get('reason')!r}"
    if tag == "artifact_recorded":
        return f"run={get('run')} {get('name')} {get('uri')}"
    if tag == "selection_recorded":
        return f"stage={get('stage')} survivors={','.join(get('survivors'))}"
    return ""


@click.command()
@click.option("--since", type=click.IntRange(min=0), default=0, help="Start after this seq.")
@click.option("--study", "-s", default=None, help="Only this study.")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(sorted(EVENT_TYPES)),
    help="Only these event types (repeatable).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they arrive.")
@click.option("--interval", default=0.5, show_default=True, help="Poll interval for --follow.")
@json_option
@click.pass_context
def log(
    ctx: click.Context,
    since: int,
    study: str | None,
    types: tuple[str, ...],
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Print events in seq order (the wire form plus seq, id, ts, hash with --json).

    \b
    Example:
      ledger log --since 120 --type run_finished
      ledger log --json | ledger --ledger replica.ledger append -
    """
    ledger = open_ledger(ctx)
    pos = since
    out = sys.stdout
    while True:
        head = ledger.head.seq
        for batch in ledger.read_batches(
            pos, head, study=study, types=types or None, with_hashes=as_json
        ):
            if as_json:
                lines = [dumps(event_to_wire(e, hash_hex=e.hash.hex())).decode() for e in batch]
            else:
                lines = [
                    f"{e.seq:>8}  {format_ts(e.ts)}  {e.event.TYPE:<18} "
                    f"{e.event.study}  {_summary(e.event)}"
                    for e in batch
                ]
            out.write("\n".join(lines) + "\n")
        pos = max(pos, head)
        if not follow:
            break
        out.flush()
        while ledger.head.seq <= pos:
            time.sleep(interval)


@click.command()
@as_of_option
@json_option
@click.pass_context
def status(ctx: click.Context, as_of: int | None, as_json: bool) -> None:
    """The head and, per study, its cases, runs by status and events.

    With --as-of SEQ, the same as it was after event SEQ.

    \b
    Example:
      ledger status --json
      ledger status --as-of 120
    """
    from ledger.summary import study_states

    ledger = open_ledger(ctx)
    head = ledger.head
    if as_of is not None:
        if as_of > head.seq:
            raise LedgerError(
                f"as-of seq {as_of} is outside the log (its head is seq {head.seq}); "
                f"pick a seq from 0 to {head.seq}"
            )
        head = Head(as_of, ledger.hash_at(as_of))
    folded = study_states(ledger, until=head.seq)
    studies = [
        {
            "study": name,
            "cases": len(st.cases),
            "runs": st.run_counts(),
            "events": st.events,
            "last_seq": st.last_seq,
        }
        for name, st in sorted(folded.items())
    ]
    if as_json:
        echo_json(
            {
                "ledger_id": ledger.ledger_id,
                "head_seq": head.seq,
                "head_hash": head.hash,
                "studies": studies,
            }
        )
        return
    click.echo(f"ledger {ledger.path}  id {ledger.ledger_id}")
    click.echo(f"head   seq {head.seq}  hash {head.hash}")
    if not studies:
        click.echo("no studies yet")
        return
    rows = [
        [
            s["study"],
            s["cases"],
            sum(s["runs"].values()),
            " ".join(f"{k}={v}" for k, v in s["runs"].items()) or "-",
            s["events"],
            s["last_seq"],
        ]
        for s in studies
    ]
    click.echo("")
    click.echo(table(["study", "cases", "runs", "by status", "events", "last seq"], rows))


@click.command()
@click.option(
    "--against",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Also check that the log still holds the head recorded in FILE: an anchor "
    "(`ledger anchor`), an export manifest.json or a backup's BACKUP.json.",
)
@json_option
@click.pass_context
def verify(ctx: click.Context, against: str | None, as_json: bool) -> None:
    """Recompute the hash chain; exit 1 and name the first bad seq when it breaks.

    The scan runs in a child process, so a ledger damaged badly enough to crash a
    reader is reported as corrupt instead of crashing this command. With --against,
    a restored older copy ("rollback detected") or a rewritten log ("head mismatch")
    fails too.

    \b
    Example:
      ledger verify --json
      ledger verify --against ~/anchors/results.json
    """
    from ledger.anchor import check_against, load_reference
    from ledger.integrity import verify_isolated

    path = ledger_path(ctx)
    reference = load_reference(against) if against is not None else None
    allow = ctx.find_root().obj.get("allow_network_fs", False)
    report = verify_isolated(path, allow_network_fs=allow)  # never maps a damaged file here
    if reference is not None and report.ok:
        with Ledger(path, create=False, readonly=True, allow_network_fs=allow) as ledger:
            problem = check_against(ledger, reference)
        if problem is not None:
            report.ok, report.error = False, problem
    if as_json:
        out = {
            "ok": report.ok,
            "events": report.events,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
        }
        if not report.ok:
            out["first_bad_seq"] = report.first_bad_seq
            out["error"] = report.error
        echo_json(out)
    elif report.ok:
        click.echo(f"ok: {report.events} events, head {report.head_seq} {report.head_hash}")
    if not report.ok:
        click.echo(f"error: {report.error}", err=True)
        ctx.exit(1)
