"""Rendering: JSON for programs (stdout, deterministic), tables for people."""

from __future__ import annotations

from typing import Any

import click

from ledger.codec import dumps
from projections.text import format_table, format_value


def echo_json(obj: Any) -> None:
    click.echo(dumps(obj).decode())


# One renderer for every command (analytics results use it for their summaries too).
fmt = format_value
table = format_table
