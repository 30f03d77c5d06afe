"""Reading series: downsampled in one request, or every point by following next_start;
and the same as pandas DataFrames (pandas is an optional extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lrlab._http import Http
from lrlab.models import Series

if TYPE_CHECKING:
    import pandas as pd


def _params(
    names: Sequence[str] | None,
    start: int | None,
    end: int | None,
    max_points: int | None,
    limit: int | None,
) -> list[tuple[str, Any]]:
    params: list[tuple[str, Any]] = [("name", n) for n in names or ()]
    for key, value in (("start", start), ("end", end), ("max_points", max_points)):
        if value is not None:
            params.append((key, value))
    if limit is not None:
        params.append(("limit", limit))
    return params


def _fetch(http: Http, trial_id: int, params: list[tuple[str, Any]]) -> list[Series]:
    body = http.call("GET", f"/trials/{trial_id}/metrics", params=params)
    return [Series.model_validate(s) for s in body["series"]]


def _merge(first: Series, rest: Series) -> Series:
    return first.model_copy(
        update={
            "steps": first.steps + rest.steps,
            "values": first.values + rest.values,
            "times": first.times + rest.times,
            "total": first.total + rest.total,
            "next_start": rest.next_start,
        }
    )


def read_series(
    http: Http,
    trial_id: int,
    names: Sequence[str] | None = None,
    *,
    start: int | None = None,
    end: int | None = None,
    max_points: int | None = None,
    page_size: int | None = None,
) -> list[Series]:
    """With `max_points`, each series downsampled to at most that many points (spikes and
    non-finite values kept by the server). Without it, every point in [start, end]: series
    the server cut at its limit are read on from `next_start` until complete."""
    if max_points is not None:
        return _fetch(http, trial_id, _params(names, start, end, max_points, None))
    series = _fetch(http, trial_id, _params(names, start, end, None, page_size))
    complete = []
    for s in series:
        while s.next_start is not None:
            params = _params([s.name], s.next_start, end, None, page_size)
            more = _fetch(http, trial_id, params)
            if not more or not more[0].steps:
                s = s.model_copy(update={"next_start": None})
                break
            s = _merge(s, more[0])
        complete.append(s)
    return complete


def require_pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "DataFrames need pandas: pip install 'lrlab[pandas]' (or pandas)"
        ) from exc
    return pandas


def long_rows(series: Sequence[Series], trial_id: int | None = None) -> list[dict[str, Any]]:
    """One dict per point: (trial_id,) name, step, value, time."""
    head = {} if trial_id is None else {"trial_id": trial_id}
    return [
        {**head, "name": s.name, "step": step, "value": value, "time": time}
        for s in series
        for step, value, time in zip(s.steps, s.values, s.times, strict=True)
    ]


def to_frame(
    series: Sequence[Series], *, wide: bool = True, trial_id: int | None = None
) -> pd.DataFrame:
    """Wide: indexed by step, one column per metric (NaN where a metric has no point).
    Long: one row per point with name, step, value, time (and trial_id if given)."""
    pd = require_pandas()
    if wide:
        by_name = {s.name: pd.Series(s.values, index=s.steps, dtype="float64") for s in series}
        frame = pd.DataFrame(by_name)
        frame.index.name = "step"
        return frame.sort_index()
    head = ["trial_id"] if trial_id is not None else []
    columns = [*head, "name", "step", "value", "time"]
    return pd.DataFrame(long_rows(series, trial_id), columns=columns)
