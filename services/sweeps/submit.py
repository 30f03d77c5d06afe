"""Submitting work: a sweep (or a single job) becomes stored, queued trials."""

from __future__ import annotations

from services.alerts.webhook_targets import check_notify_url
from services.domain.capacity import ClusterCapacity
from services.domain.errors import InvalidInput
from services.domain.kinds import LAZY_METHODS
from services.domain.records import Sweep
from services.domain.submissions import NewSweep, NewTrial
from services.settings import Settings
from services.specs import SpecError, SweepSpec, TrialSpec, expand_grid, sweep_document
from services.store import Store
from services.sweeps.lr_auto import auto_grid_size, lr_auto_pending, start_lr_auto
from services.sweeps.resource_check import check_resources


def submit_sweep(
    store: Store,
    settings: Settings,
    project_id: int,
    spec: SweepSpec,
    capacity: ClusterCapacity | None = None,
    *,
    base_field: str = "base",
) -> Sweep:
    """Store the sweep. A grid (or single) sweep queues all its trials now; a random or
    bayes sweep none: the scheduler asks for each as capacity frees (`lazy_search`), up
    to max_trials (the server's per-sweep limit when unset). With `lr: auto` a range test
    is queued first, and the sweep gets its trials once it has ended (`lr_auto`).

    `capacity` is the cluster's nodes as last seen (None: not known): on a fixed cluster a
    sweep that can make a trial no node holds is refused (`resource_check`), naming the
    field under `base_field`."""
    if spec.notify is not None:
        check_notify_url(spec.notify.url, settings)  # a 422 naming notify.url
    check_resources(spec, capacity, base_field)
    limit = settings.max_trials_per_sweep
    if spec.max_trials is not None and spec.max_trials > limit:
        raise InvalidInput(
            f"max_trials ({spec.max_trials}) is over this server's limit of {limit}",
            field="max_trials",
        )
    lazy = spec.method in LAZY_METHODS
    waits = lr_auto_pending(spec)  # no trial before its range test has set the lr
    if waits and not lazy and (size := auto_grid_size(spec)) > limit:
        raise InvalidInput(f"grid has {size} combinations; the limit is {limit}", field="space")
    try:
        combos = [] if lazy or waits else expand_grid(spec, limit)
    except SpecError as exc:
        raise InvalidInput(exc.message, field=exc.field) from exc
    trials = [
        NewTrial(
            params=dict(params), spec=trial.model_dump(mode="json"), max_restarts=trial.max_restarts
        )
        for params, trial in combos
    ]
    # The range test and the sweep that waits for it are stored together or not at all.
    with store.unit_of_work():
        if waits:
            spec = start_lr_auto(store, project_id, spec)
        return store.sweeps.create(
            project_id,
            NewSweep(
                name=spec.name,
                method=spec.method,
                spec=sweep_document(spec),
                metric_name=spec.metric.name,
                metric_goal=spec.metric.goal,
                max_trials=(spec.max_trials or limit) if lazy else spec.max_trials,
                max_concurrent=spec.max_concurrent,
            ),
            trials,
        )


def submit_job(
    store: Store,
    settings: Settings,
    project_id: int,
    trial: TrialSpec,
    name: str = "job",
    capacity: ClusterCapacity | None = None,
) -> Sweep:
    """A single training job is a sweep of one trial: one code path, one set of views."""
    spec = SweepSpec(name=name, base=trial, method="single", max_concurrent=1)
    # The request's body is the trial spec itself: an error names resources.gpus.
    return submit_sweep(store, settings, project_id, spec, capacity, base_field="")
