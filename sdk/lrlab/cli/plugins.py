"""Commands that other packages add to `lrlab` through the `lrlab.commands` entry-point
group. The server package registers its click group there, so `lrlab serve` and
`lrlab db ...` exist where the server is installed; without it they say how to get it.

An entry point may name a click.Group (each of its commands is added) or one
click.Command (added under the entry point's name). The SDK's own commands win a clash.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

import click

GROUP = "lrlab.commands"

# Commands the server package provides, for the message when it is not installed.
SERVER_COMMANDS = {
    "serve": "Run the lrlab server.",
    "db": "Database schema commands of the lrlab server.",
}
INSTALL_HINT = (
    "`lrlab {name}` comes with the lrlab server, which is not installed in this "
    "environment. Install it with `pip install lrlab-server` (from a checkout of the "
    "lrlab repository: `pip install -e .`); the SDK alone talks to a server elsewhere "
    "(set LRLAB_URL)."
)


@cache
def plugin_commands() -> dict[str, click.Command]:
    """name -> command from every installed plugin that loads."""
    found: dict[str, click.Command] = {}
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the SDK's commands
            click.echo(f"lrlab: plugin {ep.name} ({ep.value}) failed to load: {exc}", err=True)
            continue
        if isinstance(obj, click.Group):
            for name, command in obj.commands.items():
                found.setdefault(name, command)
        elif isinstance(obj, click.Command):
            found.setdefault(ep.name, obj)
    return found


def missing_server_command(name: str) -> click.Command:
    """A stand-in for a server command that is not installed: it explains and exits 2."""

    @click.command(
        name=name,
        help=f"{SERVER_COMMANDS[name]} (needs the lrlab server package)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    def stand_in() -> None:
        raise click.UsageError(INSTALL_HINT.format(name=name))

    return stand_in
