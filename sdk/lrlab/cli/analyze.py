"""`lrlab analyze SWEEP` / `lrlab analyze --trial TRIAL`: what went wrong, what to change."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from lrlab.cli.app import State, Target, json_option, main, pass_state, sweep_or_trial
from lrlab.cli.output import fmt_number, fmt_params, status_text, table
from lrlab.models import Analysis, SweepAnalysis

SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def render_trial(c: Console, a: Analysis) -> None:
    tag = " (provisional: still running)" if a.provisional else ""
    c.print(f"trial [bold]{a.trial_id}[/]: {status_text(a.status)} — {', '.join(a.kinds)}{tag}")
    for f in a.findings:
        style = SEVERITY_STYLE.get(f.severity or "", "")
        head = f"[{style}]{f.severity}[/]" if style else str(f.severity)
        where = f" from step {f.step}" if f.step is not None else ""
        conf = f", confidence {f.confidence:.2f}" if f.confidence is not None else ""
        c.print(f"\n[bold]{f.kind}[/] {head}{where}{conf}")
        if f.summary:
            c.print(f"  {f.summary}")
        if f.evidence:
            c.print(f"  evidence: {f.evidence}")
        if f.recommendation:
            c.print(f"  [green]do:[/] {f.recommendation}")
        if f.changes:
            c.print(f"  changes: {fmt_params(f.changes, width=200)}")


def _range(stable: dict[str, Any]) -> str:
    low, high = (stable.get(side) for side in ("low", "high"))
    return (
        f"({'…' if low is None else fmt_number(low)}, {'…' if high is None else fmt_number(high)})"
    )


def render_sweep(c: Console, a: SweepAnalysis) -> None:
    tag = " (provisional: trials still running)" if a.provisional else ""
    metric = f"{a.metric.name} ({a.metric.goal})" if a.metric else "the sweep metric"
    c.print(f"sweep [bold]{a.sweep_id}[/] ranked by {metric}{tag}")
    if a.best:
        b = a.best
        c.print(
            f"best: trial {b.get('trial_id')} (#{b.get('number')}), final "
            f"{fmt_number(b.get('final'))}, best {fmt_number(b.get('best'))} — "
            f"{b.get('optimizer')} lr={fmt_number(b.get('lr'))} batch={b.get('batch_size')}"
        )
    if a.sensitivity:
        rows = [
            (
                str(g.get("optimizer")),
                str(g.get("batch_size")),
                ", ".join(fmt_number(lr) for lr in g.get("lrs", [])),
                _range(g.get("stable_range") or {}),
            )
            for g in a.sensitivity
        ]
        headers = ["optimizer", "batch", "lrs tried", "stable lr range"]
        c.print(table("lr sensitivity", headers, rows))
    kinds = {k: n for k, n in a.finding_counts.items() if n}
    if kinds:
        c.print("findings: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    if a.summary:
        c.print(f"\n[green]next:[/] {a.summary}")


@main.command()
@sweep_or_trial("Analyze this trial (or run) instead.")
@json_option
@pass_state
def analyze(state: State, target: Target) -> None:
    """The diagnosis of a sweep (best lr, stable range, next steps) or of one trial."""
    kind, ident = target
    if kind == "trial":
        trial = state.client.trial_analysis(ident)
        state.out.emit(trial, lambda c: render_trial(c, trial))
        return
    sweep = state.client.sweep_analysis(ident)
    state.out.emit(sweep, lambda c: render_sweep(c, sweep))
