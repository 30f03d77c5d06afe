"""External runs, the `wandb.init` path: a script trained elsewhere logs its metrics here
(POST /trials/{id}/metrics, any metric names) and gets the same analysis as a sweep's trial."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from services.analysis.trial_analysis import current_analysis
from services.domain.errors import InvalidInput
from services.domain.records import Run, Trial, TrialStatus
from services.domain.submissions import NewRun
from services.settings import Settings
from services.store import Store
from services.tracking.metric_names import checked_mapping

# A run's config is stored with it and shown in every listing: large enough for any
# hyperparameter dict, small enough that a list of runs stays light.
MAX_CONFIG_BYTES = 64 * 1024
FINAL_STATUSES = (TrialStatus.SUCCEEDED, TrialStatus.FAILED)


def _checked_config(config: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = json.dumps(config, allow_nan=False)
    except ValueError as exc:  # NaN / Infinity have no place in strict JSON
        raise InvalidInput(f"config must hold finite numbers only ({exc})", field="config") from exc
    if len(encoded) > MAX_CONFIG_BYTES:
        raise InvalidInput(
            f"config is {len(encoded)} bytes of JSON; the limit is {MAX_CONFIG_BYTES}",
            field="config",
        )
    loaded: dict[str, Any] = json.loads(encoded)  # plain JSON types only, as stored
    return loaded


def start_run(
    store: Store,
    project_id: int,
    *,
    name: str,
    config: dict[str, Any],
    tags: Sequence[str],
    metric_name: str,
    metric_goal: str,
    metric_names: Mapping[str, str] | None = None,
) -> Run:
    """A running external run, ready for metric batches. `metric_names` maps names it
    logs to the analysed series they stand for (see services.tracking.metric_names)."""
    run = NewRun(
        name=name,
        config=_checked_config(config),
        tags=list(dict.fromkeys(tags)),  # order kept, repeats dropped
        metric_name=metric_name,
        metric_goal=metric_goal,
        metric_names=checked_mapping(metric_names or {}),
    )
    return store.runs.create(project_id, run)


def finish_run(
    store: Store, settings: Settings, project_id: int, run_id: int, status: TrialStatus | None
) -> tuple[Trial, dict[str, Any]]:
    """End the run (succeeded unless told failed) and diagnose its whole series; the
    diagnosis is kept (findings stored, so streams and webhooks see them) and returned."""
    if status is not None and status not in FINAL_STATUSES:
        allowed = ", ".join(s.value for s in FINAL_STATUSES)
        raise InvalidInput(f"a run finishes as one of: {allowed}", field="status")
    store.runs.finish(project_id, run_id, status)
    return current_analysis(store, project_id, run_id, settings.max_series_points)


def silence_reason(seconds: float) -> str:
    return f"no metrics and no heartbeat for {seconds:g} s: the script ended without finish()"


def give_up_silent_runs(store: Store, seconds: float) -> list[int]:
    """Mark failed the running runs whose script has not been heard from for `seconds`
    (it crashed, or was killed, before finish()); returns their ids."""
    failed = []
    for project_id, run_id in store.runs.silent(seconds):
        run = store.runs.finish(
            project_id, run_id, TrialStatus.FAILED, reason=silence_reason(seconds)
        )
        if run.trial.status is TrialStatus.FAILED:  # not finished by its script meanwhile
            failed.append(run_id)
    return failed
