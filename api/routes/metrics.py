"""Metric points in (idempotent batches) and series out (ranges, downsampled)."""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import CurrentProject, SettingsDep, StoreDep
from api.schemas import (
    MAX_STEP,
    MAX_TIME,
    METRIC_BATCH,
    IngestOut,
    MetricBatch,
    MetricName,
    SeriesIn,
    SeriesOut,
    SeriesSetOut,
)
from services.domain.errors import InvalidInput, TooLarge
from services.domain.kinds import TrialKind
from services.domain.records import TrialStatus

router = APIRouter(tags=["metrics"])
TrialId = Annotated[int, Path(ge=1, le=MAX_STEP)]
Step = Annotated[int | None, Query(ge=0, le=MAX_STEP)]
# Generous: a point with a 200-character name is ~260 bytes of JSON, a point of a series
# ~30 (JSON lists) or ~45 (base64 float64 values and times beside a 20-digit step).
BYTES_PER_POINT = 512
F64 = np.dtype("<f8")
Row = tuple[str, int, float, float | None]


def _inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve local $defs: a hand-declared request body cannot point into OpenAPI's own."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    resolved: dict[str, Any] = walk(schema)
    return resolved


_INGEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline_schema(METRIC_BATCH.json_schema())}},
    }
}


@router.post("/trials/{trial_id}/metrics", response_model=IngestOut, openapi_extra=_INGEST_BODY)
async def ingest_metrics(
    trial_id: TrialId,
    request: Request,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
) -> IngestOut:
    """Store a batch of points. Re-sending a batch changes nothing; a point sent again for
    a (name, step) that exists replaces its value (a resumed trial re-running steps)."""
    limit = settings.max_points_per_request
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit * BYTES_PER_POINT:
        raise TooLarge(f"body of {declared} bytes is over the limit for {limit} points")
    trial = await run_in_threadpool(store.trials.get, project.id, trial_id)
    # Validated straight from bytes: the fast path for large batches.
    try:
        batch = METRIC_BATCH.validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc
    rows = _rows(batch, limit)
    accepted = await run_in_threadpool(store.metrics.write, project.id, trial_id, rows)
    if trial.kind == TrialKind.EXTERNAL and trial.status is TrialStatus.RUNNING:
        # A batch is a sign of life from the run's script, like a heartbeat.
        await run_in_threadpool(store.runs.touch, project.id, trial_id)
    return IngestOut(accepted=accepted)


def _rows(batch: MetricBatch, limit: int) -> list[Row]:
    """(name, step, value, time) of every point of a batch the schema passed, rows then
    series; 422 for a series whose columns are missing, doubled, undecodable or differ in
    length, 413 over the point limit."""
    if "points" not in batch and "series" not in batch:
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("body", "points"),
                    "msg": "Field required: a batch has points, series or both",
                }
            ]
        )
    points = batch.get("points", [])
    series = batch.get("series", [])
    errors: list[dict[str, Any]] = []
    columns = [_columns(i, s, errors) for i, s in enumerate(series)]
    if errors:
        raise RequestValidationError(errors)
    total = len(points) + sum(len(s["steps"]) for s in series)
    if total > limit:
        field = "series" if series else "points"
        raise TooLarge(f"{total} points in one batch; the limit is {limit}", field=field)
    rows: list[Row] = [(p["name"], p["step"], p["value"], p.get("time")) for p in points]
    for s, (values, times) in zip(series, columns, strict=True):
        rows.extend(zip(repeat(s["name"]), s["steps"], values, times or repeat(None)))
    return rows


def _columns(
    i: int, s: SeriesIn, errors: list[dict[str, Any]]
) -> tuple[Sequence[float], Sequence[float | None] | None]:
    """The values and times of series `i` as lists, from JSON or base64 float64 columns;
    what is wrong with them is added to `errors`."""
    steps = len(s["steps"])

    def fail(column: str, kind: str, msg: str) -> None:
        errors.append({"type": kind, "loc": ("body", "series", i, column), "msg": msg})

    def check_length(column: str, items: Sequence[Any] | np.ndarray, unit: str) -> None:
        if len(items) != steps:
            fail(
                column,
                "length_mismatch",
                f"{column} has {len(items)} {unit} and steps {steps}: "
                "a series' columns must have the same length",
            )

    values: Sequence[float] = []
    if "values" in s and "values_f64" in s:
        fail("values_f64", "value_conflict", "a series has values or values_f64, not both")
    elif "values_f64" in s:
        packed = _f64(s["values_f64"], "values_f64", fail)
        if packed is not None:
            check_length("values_f64", packed, "numbers")
            nan = np.isnan(packed)
            if nan.any():  # one NaN, as "NaN" in JSON gives, whatever its bits were
                packed = np.where(nan, math.nan, packed)
            values = packed.tolist()
    elif "values" in s:
        values = s["values"]
        check_length("values", values, "items")
    else:
        fail("values", "missing", "Field required: a series has values or values_f64")

    times: Sequence[float | None] | None = s.get("times")
    if "times" in s and "times_f64" in s:
        fail("times_f64", "value_conflict", "a series has times or times_f64, not both")
    elif "times_f64" in s:
        packed = _f64(s["times_f64"], "times_f64", fail)
        times = None
        if packed is not None:
            check_length("times_f64", packed, "numbers")
            inside = (packed >= 0.0) & (packed <= MAX_TIME)  # False for NaN too
            if not inside.all():
                first = int(np.argmin(inside))
                fail(
                    "times_f64",
                    "time_range",
                    f"times_f64[{first}] is {float(packed[first])!r}: times are Unix "
                    f"seconds, finite, from 0 to {MAX_TIME:g}",
                )
            times = packed.tolist()
    elif times is not None:
        check_length("times", times, "items")
    return values, times


def _f64(text: str, column: str, fail: Callable[[str, str, str], None]) -> np.ndarray | None:
    """The float64s packed in a base64 column; None (and a failure) if it holds none."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (ValueError, UnicodeEncodeError) as exc:  # binascii.Error is a ValueError
        fail(column, "base64", f"{column} is not valid base64 (standard alphabet, padded): {exc}")
        return None
    if len(raw) % 8:
        fail(
            column,
            "f64_length",
            f"{column} decodes to {len(raw)} bytes, not a multiple of 8: "
            "it holds little-endian float64s",
        )
        return None
    return np.frombuffer(raw, dtype=F64)


@router.get("/trials/{trial_id}/metrics", response_model=SeriesSetOut)
def read_metrics(
    trial_id: TrialId,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[
        list[MetricName] | None,
        Query(description="Metric names (repeat the parameter); all if unset."),
    ] = None,
    start: Step = None,
    end: Step = None,
    max_points: Annotated[
        int | None, Query(ge=4, description="Downsample each series to at most this many points.")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, description="Raw reads: at most this many points per series.")
    ] = None,
) -> SeriesSetOut:
    """Series in step order. With `max_points`, a downsampled view that keeps spikes and the
    first non-finite point of every NaN/Inf run; without it, raw points up to `limit`,
    continuing from `next_start`. Non-finite values are the strings "NaN", "Infinity",
    "-Infinity"."""
    cap = settings.max_series_points
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start ({start}) must not be after end ({end})", field="start")
    if max_points is not None and max_points > cap:
        raise InvalidInput(f"max_points must be at most {cap}", field="max_points")
    if limit is not None and limit > cap:
        raise InvalidInput(f"limit must be at most {cap}", field="limit")
    series = store.metrics.read(
        project.id, trial_id, name, start=start, end=end, max_points=max_points, limit=limit or cap
    )
    return SeriesSetOut(trial_id=trial_id, series=[SeriesOut.of(s) for s in series])


@router.get("/trials/{trial_id}/metric-names", response_model=list[str])
def metric_names(trial_id: TrialId, project: CurrentProject, store: StoreDep) -> list[str]:
    return store.metrics.names(project.id, trial_id)
