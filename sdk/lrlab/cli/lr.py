"""`lrlab lr-find TASK` (an LR range test) and `lrlab recommend` (an lr from history)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from lrlab.cli.app import State, json_option, main, pass_state
from lrlab.cli.output import fmt_number, table
from lrlab.models import LrFind, Recommendation


def render_lr_find(c: Console, r: LrFind) -> None:
    tag = " (provisional: still running)" if r.provisional else ""
    c.print(f"range test {r.sweep_id} (trial {r.trial_id}): {r.status}, {r.verdict}{tag}")
    if r.summary:
        c.print(r.summary)
    rows = [
        (str(s.get("method")), fmt_number(s.get("lr")), str(s.get("reasoning", "")))
        for s in r.suggestions
    ]
    if rows:
        c.print(table("suggested lrs", ["method", "lr", "why"], rows))
    if r.recommended:
        c.print(f"[green]use:[/] lr={fmt_number(r.recommended.get('lr'))}")
    if r.bounds:
        low, high = fmt_number(r.bounds.get("low")), fmt_number(r.bounds.get("high"))
        c.print(f"sweep bounds (log-uniform): {low} to {high}")


@main.command("lr-find")
@click.argument("task")
@click.option("--model", help="The task's model (its default if unset).")
@click.option("--optimizer", default="sgd", show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--min-lr", type=float, help="Where the ramp starts.")
@click.option("--max-lr", type=float, help="Where the ramp ends.")
@click.option("--steps", type=int, help="Steps of the ramp.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the result.")
@click.option("--wait-timeout", type=float, default=1800.0, show_default=True)
@json_option
@pass_state
def lr_find(
    state: State,
    task: str,
    model: str | None,
    optimizer: str,
    batch_size: int,
    min_lr: float | None,
    max_lr: float | None,
    steps: int | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Run an LR range test on TASK: the lr ramps up exponentially until the loss blows
    up; the curve says which lr to use and which range to sweep."""
    task_spec: dict[str, Any] = {"name": task, **({"model": model} if model else {})}
    base = {
        "task": task_spec,
        "optimizer": {"name": optimizer, "lr": min_lr or 1e-3},
        "batch_size": batch_size,
    }
    options = {k: v for k, v in (("min_lr", min_lr), ("max_lr", max_lr), ("steps", steps)) if v}
    found = state.client.lr_find(base, **options)
    if wait:
        found = state.client.wait_lr_find(found.sweep_id, timeout=wait_timeout)
    state.out.emit(found, lambda c: render_lr_find(c, found))


def render_recommendation(c: Console, r: Recommendation) -> None:
    if r.enough_history and r.lr is not None:
        span = ""
        if r.range:
            span = f" (range {fmt_number(r.range.get('low'))} to {fmt_number(r.range.get('high'))})"
        c.print(f"[green]lr {fmt_number(r.lr)}[/]{span}, {r.match or 'match'}")
    else:
        c.print("[yellow]not enough history for a number[/]")
    c.print(r.reasoning)
    for widening in r.widened:  # what the match let go of: never pooled silently
        c.print(f"[yellow]widened[/] {widening}")
    for note in r.notes:
        c.print(f"- {note}")


@main.command()
@click.option("--task", required=True)
@click.option("--optimizer", required=True)
@click.option("--model")
@click.option("--batch-size", default="32", show_default=True)
@click.option("--schedule", default="constant", show_default=True)
@click.option("--rule", default="auto", show_default=True, help="auto, linear or sqrt.")
@click.option("--momentum", type=float, help="sgd, rmsprop: momentum to match (default 0).")
@click.option("--nesterov/--no-nesterov", default=None, help="sgd: Nesterov or not.")
@click.option("--betas", type=(float, float), help="adam, adamw: beta1 beta2.")
@click.option("--max-steps", type=int, help="Budget to match, in steps (within 2x).")
@click.option("--epochs", type=int, help="Budget to match, in epochs (within 2x).")
@json_option
@pass_state
def recommend(
    state: State,
    task: str,
    optimizer: str,
    model: str | None,
    batch_size: str,
    schedule: str,
    rule: str,
    momentum: float | None,
    nesterov: bool | None,
    betas: tuple[float, float] | None,
    max_steps: int | None,
    epochs: int | None,
) -> None:
    """An lr and range learned from this project's finished trials of the same task,
    model, optimizer settings, batch size, schedule and (if given) budget; what had to be
    widened for want of trials is listed."""
    found = state.client.recommend(
        task,
        optimizer,
        model=model,
        batch_size=batch_size,
        schedule=schedule,
        rule=rule,
        momentum=momentum,
        nesterov=nesterov,
        betas=betas,
        max_steps=max_steps,
        epochs=epochs,
    )
    state.out.emit(found, lambda c: render_recommendation(c, found))
