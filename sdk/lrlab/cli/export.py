"""`lrlab export SWEEP`: the sweep's results as CSV, JSON or Parquet.

One row per trial (params flattened, the sweep metric's final and best value), or with
--points every stored point (trial_id, name, step, value, time).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from lrlab.cli.app import State, main, pass_state
from lrlab.cli.output import jsonable
from lrlab.client import Client
from lrlab.errors import LrlabError
from lrlab.metrics import long_rows
from lrlab.models import Sweep, Trial

FORMATS = ("csv", "json", "parquet")


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts as dotted keys; lists as JSON text (one cell each)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(jsonable(list(value)))
    else:
        out[prefix] = value


def _summary(values: Sequence[float], goal: str) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    finite = [v for v in values if math.isfinite(v)]
    best = (min(finite) if goal == "minimize" else max(finite)) if finite else None
    return values[-1], best


def trial_rows(client: Client, sweep: Sweep, trials: Sequence[Trial]) -> list[dict[str, Any]]:
    metric, goal = sweep.metric.name, sweep.metric.goal
    rows = []
    for t in trials:
        series = client.metrics(t.id, [metric])
        found = next((s for s in series if s.name == metric), None)
        final, best = _summary(found.values if found else [], goal)
        row: dict[str, Any] = {"trial_id": t.id, "number": t.number, "status": t.status}
        flatten("params", t.params, row)
        row.update(
            {
                "metric": metric,
                "final": final,
                "best": best,
                "last_step": found.steps[-1] if found and found.steps else None,
                "stop_reason": t.stop_reason,
            }
        )
        rows.append(row)
    return rows


def point_rows(
    client: Client, trials: Sequence[Trial], names: Sequence[str], max_points: int | None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for t in trials:
        rows.extend(long_rows(client.metrics(t.id, names or None, max_points=max_points), t.id))
    return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_parquet(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise click.ClickException(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'lrlab[parquet]' (or pyarrow), or use --format csv or json"
        ) from exc
    columns = _columns(rows)
    data = {name: _one_type([row.get(name) for row in rows]) for name in columns}
    pq.write_table(pa.table(data), path)


def _one_type(values: list[Any]) -> list[Any]:
    """A Parquet column holds one type: a column of mixed kinds becomes text."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) <= 1 or kinds <= {int, float}:
        return values
    return [None if v is None else str(v) for v in values]


@main.command()
@click.argument("sweep_id", type=int)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@click.option("--points", is_flag=True, help="Every metric point instead of a row per trial.")
@click.option("--metric", "names", multiple=True, help="With --points: only these metrics.")
@click.option("--max-points", type=int, help="With --points: downsample each series to this.")
@pass_state
def export(
    state: State,
    sweep_id: int,
    fmt: str,
    output: Path | None,
    points: bool,
    names: tuple[str, ...],
    max_points: int | None,
) -> None:
    """Write a sweep's results as csv, json or parquet (parquet needs pyarrow and -o)."""
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a file: give -o FILE")
    client = state.client
    sweep = client.get_sweep(sweep_id)
    trials = client.trials(sweep_id)
    if points:
        rows = point_rows(client, trials, names, max_points)
    else:
        rows = trial_rows(client, sweep, trials)
    if fmt == "parquet":
        assert output is not None
        write_parquet(rows, output)
    else:
        text = to_csv(rows) if fmt == "csv" else json.dumps(jsonable(rows), indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            try:
                output.write_text(text)
            except OSError as exc:
                raise LrlabError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if output is not None:
        click.echo(f"{len(rows)} rows written to {output}", err=True)
