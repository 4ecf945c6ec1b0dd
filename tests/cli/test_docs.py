"""Help and README cannot drift: every command has help ending with an example and
appears in the README's command reference."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from cli.main import COMMANDS, cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands():
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        yield name, cmd
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                yield f"{name} {sub}", cmd.get_command(ctx, sub)


def test_every_registered_command_exists():
    ctx = click.Context(cli)
    assert sorted(cli.list_commands(ctx)) == sorted(COMMANDS)


@pytest.mark.parametrize(
    ("name", "cmd"), list(_commands()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_help_has_an_example_and_readme_names_it(name, cmd):
    text = cmd.help or ""
    assert "Example" in text, f"`ledger {name} --help` has no example"
    assert f"ledger {name}" in README, f"README does not mention `ledger {name}`"
