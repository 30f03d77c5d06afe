"""The `lrlab` group: global options, the client, plugins, and exit codes.

Exit codes:
  0  success
  1  the server refused or failed the request (validation, conflict, 5xx), the server
     could not be reached, or a local file or dependency problem
  2  usage: a bad option or argument, or a command this installation does not have
  3  not found, unauthorized or forbidden (no such sweep/trial, a bad or missing token)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import click

from lrlab._version import VERSION
from lrlab.cli.output import Output, jsonable
from lrlab.cli.plugins import SERVER_COMMANDS, missing_server_command, plugin_commands
from lrlab.client import Client
from lrlab.errors import Forbidden, LrlabError, NotFound, Unauthorized
from lrlab.specs import SpecFileError

F = TypeVar("F", bound=Callable[..., Any])
Target = tuple[Literal["sweep", "trial"], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


def exit_code(exc: Exception) -> int:
    if isinstance(exc, NotFound | Unauthorized | Forbidden):
        return EXIT_NOT_FOUND
    return EXIT_FAILED


@dataclass
class State:
    url: str | None
    token: str | None
    timeout: float
    as_json: bool = False
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, self.token, timeout=self.timeout)
        return self._client

    @property
    def out(self) -> Output:
        return Output(self.as_json)


def report(state: State, exc: Exception) -> None:
    """The error on stderr; with --json also as {"error": {...}} on stdout."""
    out = state.out
    if state.as_json:
        body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, LrlabError):
            body["status"] = exc.status_code
            body["details"] = [vars(d) for d in exc.details]
        out.line({"error": jsonable(body)})
    out.errors.print(f"[red]error:[/] {exc}", markup=True, soft_wrap=True)


class LrlabGroup(click.Group):
    """SDK commands first, then plugin commands (the server's serve and db)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(plugin_commands()) | set(SERVER_COMMANDS)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = plugin_commands().get(cmd_name)
        if command is None and cmd_name in SERVER_COMMANDS:
            return missing_server_command(cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LrlabError, SpecFileError) as exc:
            state = ctx.find_object(State) or State(None, None, 30.0)
            report(state, exc)
            ctx.exit(exit_code(exc))
        except KeyboardInterrupt:
            ctx.exit(EXIT_INTERRUPTED)
        finally:
            opened = ctx.find_object(State)
            if opened is not None and opened._client is not None:
                opened._client.close()


@click.group(cls=LrlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, package_name="lrlab", prog_name="lrlab")
@click.option("--url", envvar="LRLAB_URL", help="Server URL (LRLAB_URL; default local).")
@click.option("--token", envvar="LRLAB_TOKEN", help="API token (LRLAB_TOKEN).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@click.pass_context
def main(ctx: click.Context, url: str | None, token: str | None, timeout: float) -> None:
    """lrlab: learning-rate experiments from the terminal.

    Exit codes: 0 ok, 1 server or validation error, 2 usage, 3 not found or not allowed.
    """
    ctx.obj = State(url=url, token=token, timeout=timeout)


def json_option(f: Any) -> Any:
    """--json: machine-readable output on stdout (and errors as {"error": ...})."""

    def set_json(ctx: click.Context, _: click.Parameter, value: bool) -> bool:
        state = ctx.find_object(State)
        if state is not None and value:
            state.as_json = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        is_eager=True,
        help="Print JSON for scripts.",
    )(f)


pass_state = click.make_pass_decorator(State)


def sweep_or_trial(trial_help: str) -> Callable[[F], F]:
    """SWEEP_ID argument or --trial TRIAL_ID option; the command gets `target`, a
    ("sweep" | "trial", id) pair, and a usage error unless exactly one is given."""

    def pick(ctx: click.Context, _: click.Parameter, trial_id: int | None) -> Target:
        sweep_id = ctx.params.pop("sweep_id", None)
        if (sweep_id is None) == (trial_id is None):
            raise click.UsageError("give a SWEEP_ID or --trial TRIAL_ID (one of them)")
        return ("trial", trial_id) if trial_id is not None else ("sweep", sweep_id)

    def decorate(f: F) -> F:
        f = click.option("--trial", "target", type=int, callback=pick, help=trial_help)(f)
        return click.argument("sweep_id", type=int, required=False, is_eager=True)(f)

    return decorate
