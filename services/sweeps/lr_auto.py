"""`lr: auto` sweeps: start the range test at submission, settle the lr once it has ended.

A sweep whose spec has an unsettled `lr_auto` is stored without trials and with the id of
its range test (a sweep of method lr_find, started here unless the spec names one already
run). The housekeeping (services.scheduling.housekeeping) calls `settle_waiting_sweeps` on each
tick: for every such sweep whose range test has ended, the test's reading gives
log-uniform bounds, which become the lr's parameter in the sweep's stored spec
(`specs.range_test.resolve_auto_lr`), and a grid's trials are queued with it, in one
transaction (`store.pending_sweeps`). From then on the stored spec is an ordinary sweep
spec, so a restarted server neither runs the test again nor settles twice; random and
bayes sweeps ask in the settled space. A test that failed, or that suggested nothing,
cancels the sweep with the reason kept in `lr_auto.resolution.summary`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from services.domain.errors import NotFound
from services.domain.kinds import LAZY_METHODS
from services.domain.records import TrialStatus
from services.domain.stored_specs import decode_sweep_spec
from services.domain.submissions import NewTrial
from services.specs import SpecError, SweepSpec, expand_grid, grid_size, sweep_document
from services.specs.range_test import (
    AUTO_PATH,
    LrAutoResolution,
    RangeTestRequest,
    resolve_auto_lr,
)
from services.store import Store
from services.sweeps.range_tests import range_test_trial, read_range_test, submit_range_test

__all__ = ["auto_grid_size", "lr_auto_pending", "settle_waiting_sweeps", "start_lr_auto"]

log = logging.getLogger("lrlab.lr_auto")


def lr_auto_pending(spec: SweepSpec) -> bool:
    """Whether the sweep still waits for its range test to set the lr."""
    return spec.lr_auto is not None and spec.lr_auto.resolution is None


def auto_grid_size(spec: SweepSpec) -> int:
    """Trials the grid will have once the lr's `values` join the space."""
    assert spec.lr_auto is not None
    return grid_size(spec) * spec.lr_auto.values


def start_lr_auto(store: Store, project_id: int, spec: SweepSpec) -> SweepSpec:
    """`spec` with its range test named: the one it gives (checked to be this project's),
    else a new one on its base, queued now."""
    auto = spec.lr_auto
    assert auto is not None and auto.resolution is None
    if auto.range_test_sweep_id is not None:
        try:
            range_test_trial(store, project_id, auto.range_test_sweep_id)
        except NotFound as exc:  # another project's, or not a range test
            raise NotFound(exc.message, field="lr_auto.range_test_sweep_id") from exc
        return spec
    request = RangeTestRequest(
        name=f"{spec.name} (range test)"[:200],
        base=spec.base,
        **auto.range_test.model_dump(),
    )
    test = submit_range_test(store, project_id, request)
    lr_auto = auto.model_copy(update={"range_test_sweep_id": test.id})
    return spec.model_copy(update={"lr_auto": lr_auto})


@dataclass(frozen=True)
class _Settled:
    spec: SweepSpec
    trials: list[NewTrial]
    cancel: bool


def _give_up(spec: SweepSpec, summary: str) -> _Settled:
    assert spec.lr_auto is not None
    resolution = LrAutoResolution(summary=summary[:4000])
    lr_auto = spec.lr_auto.model_copy(update={"resolution": resolution})
    return _Settled(spec.model_copy(update={"lr_auto": lr_auto}), [], cancel=True)


def _settle(store: Store, project_id: int, spec: SweepSpec) -> _Settled | None:
    """What the sweep becomes now that its range test has ended; None while it runs."""
    auto = spec.lr_auto
    assert auto is not None and auto.range_test_sweep_id is not None
    _, test = range_test_trial(store, project_id, auto.range_test_sweep_id)
    if not test.status.is_terminal:
        return None  # checked first: the series are read once, when the test has ended
    if test.status is not TrialStatus.SUCCEEDED:
        why = test.error or test.stop_reason or test.status.value
        return _give_up(spec, f"range test (trial {test.id}) ended {test.status.value}: {why}")
    reading = read_range_test(store, project_id, auto.range_test_sweep_id).reading
    if reading.bounds is None or reading.recommended is None:
        return _give_up(spec, f"range test (trial {test.id}) suggested no lr: {reading.summary}")
    param = resolve_auto_lr(auto, spec.base, spec.method, reading.bounds.low, reading.bounds.high)
    resolution = LrAutoResolution(
        lr=reading.recommended.lr,
        low=reading.bounds.low,
        high=reading.bounds.high,
        summary=f"{reading.summary} Bounds: {reading.bounds.reasoning}."[:4000],
    )
    data = sweep_document(spec)  # the base's entries as set, as submission stored them
    data["space"][AUTO_PATH] = param.model_dump(exclude_none=True)
    data["lr_auto"]["resolution"] = resolution.model_dump()
    try:
        settled = SweepSpec.model_validate(data)
        combos = [] if spec.method in LAZY_METHODS else expand_grid(settled, grid_size(settled))
    except (ValidationError, SpecError) as exc:
        return _give_up(spec, f"the lrs the range test gave make invalid trials: {exc}")
    trials = [
        NewTrial(params=dict(p), spec=t.model_dump(mode="json"), max_restarts=t.max_restarts)
        for p, t in combos
    ]
    return _Settled(settled, trials, cancel=False)


def settle_waiting_sweeps(store: Store) -> list[int]:
    """Settle every waiting `lr: auto` sweep whose range test has ended; their ids."""
    done = []
    for sweep_id, project_id, raw in store.pending_sweeps.waiting():
        if not isinstance(raw.get("lr_auto"), dict) or raw["lr_auto"].get("resolution"):
            continue  # not waiting for a range test (a lazy sweep before its first ask)
        try:
            spec = decode_sweep_spec(raw, sweep_id=sweep_id)
            settled = _settle(store, project_id, spec)
            if settled is None:
                continue
            stored = sweep_document(settled.spec)
            if store.pending_sweeps.settle(sweep_id, stored, settled.trials, cancel=settled.cancel):
                done.append(sweep_id)
                log.info("sweep %s: %s", sweep_id, stored["lr_auto"]["resolution"]["summary"])
        except Exception:  # one broken sweep must not stop the others (or the tick)
            log.exception("sweep %s: settling lr: auto failed", sweep_id)
    return done
