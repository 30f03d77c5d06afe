"""`lrlab watch SWEEP`: live progress of a sweep's trials and a running leaderboard, fed
by the sweep's event stream (or by polling, on a server without one)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from lrlab.cli.app import State, json_option, main, pass_state
from lrlab.cli.output import Output, fmt_number, fmt_params, status_text, table
from lrlab.client import Client
from lrlab.errors import NotFound
from lrlab.models import TERMINAL_TRIAL, Sweep, Trial
from lrlab.streaming import StreamEvent


@dataclass
class Row:
    trial_id: int
    number: int
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    last_step: int | None = None
    final: float | None = None
    best: float | None = None
    kinds: list[str] = field(default_factory=list)


class Board:
    """The state `watch` shows, updated event by event."""

    def __init__(self, sweep: Sweep, trials: list[Trial]) -> None:
        self.sweep = sweep
        self.metric = sweep.metric.name
        self.minimize = sweep.metric.goal == "minimize"
        self.rows: dict[int, Row] = {}
        for t in trials:
            self.update_trial(t)

    def update_trial(self, t: Trial) -> None:
        row = self.rows.get(t.id)
        if row is None:
            self.rows[t.id] = Row(t.id, t.number, t.status, dict(t.params))
        else:
            row.status = t.status

    def _row(self, trial_id: int, data: dict[str, Any]) -> Row:
        if trial_id not in self.rows:
            number = data.get("number")
            self.rows[trial_id] = Row(
                trial_id, number if isinstance(number, int) else len(self.rows), "running"
            )
        return self.rows[trial_id]

    def apply(self, event: StreamEvent) -> None:
        tid = event.trial_id
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "trial" and tid is not None and isinstance(data.get("status"), str):
            self._row(tid, data).status = data["status"]
        for p in event.points:
            if p.trial_id is None:
                continue
            row = self._row(p.trial_id, data)
            row.last_step = max(row.last_step or 0, p.step)
            if p.name == self.metric:
                row.final = p.value
                if math.isfinite(p.value) and (
                    row.best is None or (p.value < row.best) == self.minimize
                ):
                    row.best = p.value
        finding = event.finding
        if finding is not None and tid is not None:
            kinds = self._row(tid, data).kinds
            if finding.kind not in kinds:
                kinds.append(finding.kind)

    def ranked(self) -> list[Row]:
        def key(r: Row) -> tuple[int, float, int]:
            if r.best is None:
                return (1, 0.0, r.number)
            return (0, r.best if self.minimize else -r.best, r.number)

        return sorted(self.rows.values(), key=key)

    def render(self) -> RenderableType:
        total = max(len(self.rows), self.sweep.max_trials or 0)
        done = sum(r.status in TERMINAL_TRIAL for r in self.rows.values())
        head = Text.from_markup(
            f"sweep [bold]{self.sweep.id}[/] {self.sweep.name!r}: {done}/{total} trials done, "
            f"ranked by {self.metric} ({self.sweep.metric.goal})"
        )
        rows = [
            (
                str(r.number),
                str(r.trial_id),
                status_text(r.status),
                fmt_number(r.last_step),
                fmt_number(r.final),
                fmt_number(r.best),
                ", ".join(r.kinds),
                fmt_params(r.params, 40),
            )
            for r in self.ranked()
        ]
        headers = ["#", "trial", "status", "step", self.metric, "best", "findings", "params"]
        parts: list[RenderableType] = [head]
        if self.sweep.status_reason:  # why it failed, or what its trials wait for
            parts.append(Text(self.sweep.status_reason, style="red"))
        return Group(
            *parts, ProgressBar(total=total or 1, completed=done), table(None, headers, rows)
        )


def _watch_stream(client: Client, board: Board, out: Output, live: Live | None) -> bool:
    """Follow the stream until `end`; False if this server has no stream route."""
    try:
        last = 0.0
        for event in client.stream_sweep(board.sweep.id):
            if out.as_json:
                out.line({"id": event.id, "type": event.type, "data": event.data})
            board.apply(event)
            now = time.monotonic()
            if live is not None and (now - last > 0.25 or event.type == "end"):
                live.update(board.render())
                last = now
    except NotFound:
        return False  # the sweep exists (checked before): the route does not
    return True


def _watch_poll(client: Client, board: Board, out: Output, live: Live | None, every: float) -> None:
    while True:
        sweep = client.get_sweep(board.sweep.id)
        board.sweep = sweep
        for t in client.trials(sweep.id):
            board.update_trial(t)
        if out.as_json:
            out.line({"type": "sweep", "data": sweep})
        if live is not None:
            live.update(board.render())
        if sweep.is_terminal:
            return
        time.sleep(every)


@main.command()
@click.argument("sweep_id", type=int)
@click.option("--interval", type=float, default=2.0, show_default=True, help="Polling fallback.")
@json_option
@pass_state
def watch(state: State, sweep_id: int, interval: float) -> None:
    """Follow a sweep live until it ends: trial progress and a leaderboard. With --json,
    one JSON object per event."""
    client, out = state.client, state.out
    board = Board(client.get_sweep(sweep_id), client.trials(sweep_id))
    if out.as_json:
        if not _watch_stream(client, board, out, None):
            _watch_poll(client, board, out, None, interval)
        return
    with Live(board.render(), console=out.console, refresh_per_second=4) as live:
        if not _watch_stream(client, board, out, live):
            _watch_poll(client, board, out, live, interval)
        board.sweep = client.get_sweep(sweep_id)
        live.update(board.render())
