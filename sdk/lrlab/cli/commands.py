"""submit, status, cancel, runs and the registries (tasks, optimizers, schedules)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from lrlab.cli.app import State, Target, json_option, main, pass_state, sweep_or_trial
from lrlab.cli.output import fmt_params, fmt_time, status_text, table
from lrlab.models import RegistryEntry, Sweep, Trial
from lrlab.specs import FORMATS


def _counts(sweep: Sweep) -> str:
    return f"{sweep.trials_done}/{sweep.trials_total}"


def _sweep_line(sweep: Sweep) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(sweep.trial_counts.items())) or "no trials"
    line = (
        f"sweep [bold]{sweep.id}[/] {sweep.name!r} ({sweep.method}): {status_text(sweep.status)}"
        f" — {counts}; ranked by {sweep.metric.name} ({sweep.metric.goal})"
    )
    # Why it failed, or what it waits for: never left for the user to guess.
    return line if sweep.status_reason is None else f"{line}\n  {escape(sweep.status_reason)}"


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="native lrlab spec or W&B sweep file (auto: by its keys).",
)
@click.option("--wait", "wait_", is_flag=True, help="Wait until the sweep has ended.")
@json_option
@pass_state
def submit(state: State, file: str, fmt: str, wait_: bool) -> None:
    """Submit the sweep in FILE (YAML or JSON). With --wait, exit 1 if it ended failed."""
    sweep = state.client.submit(file, format=fmt)  # type: ignore[arg-type]
    out = state.out
    for warning in sweep.warnings:  # stored all the same, but likely unintended
        out.errors.print(Text.assemble(("warning:", "yellow"), " ", warning), soft_wrap=True)
    if wait_:
        sweep = state.client.wait_sweep(sweep.id)
    state.out.emit(sweep, lambda c: c.print(_sweep_line(sweep)))
    if sweep.status == "failed":  # stopped itself (its failure_policy): a script should know
        raise click.exceptions.Exit(1)


def _sweeps_table(sweeps: list[Sweep]) -> object:
    rows = [
        (str(s.id), s.name, s.method, status_text(s.status), _counts(s), fmt_time(s.created_at))
        for s in sweeps
    ]
    return table("sweeps", ["id", "name", "method", "status", "done", "created"], rows)


def _trials_table(trials: list[Trial]) -> object:
    rows = [
        (
            str(t.number),
            str(t.id),
            status_text(t.status),
            fmt_params(t.params),
            str(t.attempt),
            t.status_reason or t.stop_reason or t.error or "",
        )
        for t in trials
    ]
    return table("trials", ["#", "trial", "status", "params", "attempt", "note"], rows)


@main.command()
@click.argument("sweep_id", type=int, required=False)
@click.option("--status", "only", help="Only sweeps (or trials) in this state.")
@click.option("--limit", type=int, default=20, show_default=True, help="Sweeps to list.")
@json_option
@pass_state
def status(state: State, sweep_id: int | None, only: str | None, limit: int) -> None:
    """The latest sweeps, or one sweep with its trials."""
    client = state.client
    if sweep_id is None:
        page = client.list_sweeps(only, limit=limit)
        state.out.emit(page, lambda c: c.print(_sweeps_table(page.items)))
        return
    sweep = client.get_sweep(sweep_id)
    trials = client.trials(sweep_id, only)

    def render(c: Console) -> None:
        c.print(_sweep_line(sweep))
        c.print(_trials_table(trials))

    state.out.emit({"sweep": sweep, "trials": trials}, render)


@main.command()
@sweep_or_trial("Cancel this one trial instead.")
@json_option
@pass_state
def cancel(state: State, target: Target) -> None:
    """Cancel a sweep (queued trials at once, running ones asked to stop), or one trial."""
    kind, ident = target
    if kind == "trial":
        trial = state.client.cancel_trial(ident)
        line = f"trial {trial.id}: {status_text(trial.status)}"
        if trial.cancel_requested and not trial.is_terminal:
            line += " (asked to stop)"
        state.out.emit(trial, lambda c: c.print(line))
        return
    sweep = state.client.cancel_sweep(ident)
    state.out.emit(sweep, lambda c: c.print(_sweep_line(sweep)))


def _registry_command(kind: str) -> None:
    def run(state: State) -> None:
        entries: list[RegistryEntry] = getattr(state.client, kind)()
        rows = [
            (e.name, e.description.split("\n")[0], ", ".join(e.param_names) or "-") for e in entries
        ]
        state.out.emit(entries, lambda c: c.print(table(kind, ["name", "about", "params"], rows)))

    main.command(name=kind, help=f"The {kind} this server offers, with their parameters.")(
        json_option(pass_state(run))
    )


for _kind in ("tasks", "optimizers", "schedules"):
    _registry_command(_kind)


@main.command()
@click.option("--status", "only", help="Only runs in this state.")
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
@pass_state
def runs(state: State, only: str | None, limit: int) -> None:
    """External runs logged through the SDK (start_run), newest first."""
    page = state.client.list_runs(only, limit=limit)
    rows = [
        (str(r.id), r.name, status_text(r.status), str(r.last_step), fmt_params(r.config))
        for r in page.items
    ]
    headers = ["run", "name", "status", "last step", "config"]
    state.out.emit(page, lambda c: c.print(table("runs", headers, rows)))
