"""Option bundles shared by commands, and how a command opens its ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ledger import Ledger

F = TypeVar("F", bound=Callable[..., Any])


def ledger_path(ctx: click.Context) -> str:
    return ctx.find_root().obj["ledger_path"]


def open_ledger(ctx: click.Context, *, create: bool = False, readonly: bool = True) -> Ledger:
    """Open the ledger named by ``--ledger``. Only ``append``/``import``/``init`` create
    one; every other command refuses a path that holds none (a typo must not start an
    empty ledger)."""
    ledger = Ledger(
        ledger_path(ctx),
        create=create,
        readonly=readonly and not create,
        allow_network_fs=ctx.find_root().obj.get("allow_network_fs", False),
    )
    ctx.call_on_close(ledger.close)
    return ledger


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")(f)


def as_of_option(f: F) -> F:
    return click.option(
        "--as-of",
        "as_of",
        type=click.IntRange(min=0),
        default=None,
        help="The state after event SEQ (SEQ included); default: the head.",
    )(f)


def study_option(required: bool = True) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option("--study", "-s", required=required, help="The study.")(f)

    return deco
