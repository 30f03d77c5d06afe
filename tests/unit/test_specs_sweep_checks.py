"""A sweep's checks at submission (`specs.sweep_checks`): every trial a sampled space can
make builds, distributions stay in their fields' bounds, the metric is named where it
matters and logged by the task; and the one trial builder that grids, lazy trials and the
checks share."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.domain.stored_specs import decode_sweep_spec
from services.specs import (
    AdagradParams,
    AdamParams,
    DigitsTask,
    SGDParams,
    SweepSpec,
    apply_params,
    expand_grid,
    space_check,
    spec_errors,
    sweep_document,
)
from services.specs.sweep_checks import check_sweep
from tests.support.specs import trial

SGD = {"name": "sgd", "lr": 0.1}
METRIC = {"name": "val_loss", "goal": "minimize"}
LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1.0}


def spec_of(space: dict[str, Any], method: str = "random", **fields: Any) -> SweepSpec:
    base = fields.pop("base", trial(optimizer=SGD))
    return SweepSpec.model_validate({"base": base, "method": method, "space": space, **fields})


def checked(spec: SweepSpec) -> list[str]:
    """The warnings of a sweep that passes its checks."""
    warnings: list[str] = []
    check_sweep(spec, warnings)
    return warnings


def problems(spec: SweepSpec) -> dict[str, str]:
    """field -> message of every problem of a sweep that fails its checks."""
    with pytest.raises(ValidationError) as info:
        check_sweep(spec, [])
    return {error.field: error.message for error in spec_errors(info.value)}


# -- one builder: switching a registry entry ----------------------------------------------------


def test_a_swept_key_applies_only_to_the_entries_that_have_it() -> None:
    base = SweepSpec.model_validate({"base": trial(optimizer=SGD)}).base
    adam = apply_params(base, {"optimizer.name": "adam", "optimizer.momentum": 0.9})
    sgd = apply_params(base, {"optimizer.name": "sgd", "optimizer.momentum": 0.9})
    assert adam.optimizer == AdamParams(lr=0.1)
    assert sgd.optimizer == SGDParams(lr=0.1, momentum=0.9)


def test_a_switch_never_carries_the_old_entrys_keys_or_defaults() -> None:
    # momentum was set on the base's sgd; adagrad has no momentum and its own default lr
    base = SweepSpec.model_validate(
        {"base": trial(optimizer={"name": "sgd", "momentum": 0.9})}
    ).base
    assert apply_params(base, {"optimizer.name": "adagrad"}).optimizer == AdagradParams()
    # a key set on the base that both entries have does follow the switch
    set_lr = SweepSpec.model_validate({"base": trial(optimizer=SGD)}).base
    assert apply_params(set_lr, {"optimizer.name": "adagrad"}).optimizer.lr == 0.1


def test_a_whole_entry_given_as_a_value_keeps_its_keys() -> None:
    base = SweepSpec.model_validate({"base": trial(optimizer=SGD)}).base
    with pytest.raises(ValidationError, match="unknown key 'momentum' for optimizer 'adam'"):
        apply_params(base, {"optimizer": {"name": "adam", "momentum": 0.9}})


def test_a_stored_sweep_builds_its_trials_as_at_submission() -> None:
    spec = spec_of({"optimizer.name": ["sgd", "adagrad"]}, method="grid")
    stored = decode_sweep_spec(sweep_document(spec), sweep_id=1)
    now = [t for _, t in expand_grid(spec, limit=10)]
    later = [apply_params(stored.base, params) for params, _ in expand_grid(spec, limit=10)]
    assert later == now
    assert now[1].optimizer == AdagradParams(lr=0.1)
    assert sweep_document(spec)["base"]["optimizer"] == SGD  # what the user set, no more


def test_a_sweep_stored_with_every_default_still_switches() -> None:
    # Sweeps stored before `sweep_document` hold every default of the base's sgd.
    spec = spec_of({"optimizer.name": ["sgd", "adam"]})
    stored = decode_sweep_spec(spec.model_dump(mode="json"), sweep_id=1)
    assert apply_params(stored.base, {"optimizer.name": "adam"}).optimizer == AdamParams(lr=0.1)


# -- a sampled space: combinations and supports ---------------------------------------------


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_switching_optimizers_with_momentum_swept_passes_with_a_warning(method: str) -> None:
    momentum = {"distribution": "uniform", "low": 0.0, "high": 0.99}
    space = {"optimizer.name": ["sgd", "adam"], "optimizer.momentum": momentum}
    warnings = checked(spec_of(space, method, metric=METRIC))
    assert warnings == [
        "space['optimizer.momentum']: only optimizer sgd has momentum; the trials with adam "
        "run without it"
    ]


def test_a_key_no_chosen_entry_has_is_refused() -> None:
    space = {"optimizer.name": ["adam", "adamw"], "optimizer.momentum": [0.9]}
    assert problems(spec_of(space)) == {
        "space['optimizer.momentum']": "none of the optimizers this sweep picks (adam, adamw) "
        "has 'momentum'"
    }


def test_a_schedule_field_one_chosen_schedule_refuses_is_refused_naming_it() -> None:
    # Schedules named alone take their fields' defaults from the budget (W&B files name
    # them so), so what a sampled space can still get wrong is a value one kind refuses.
    space = {"schedule.name": ["cosine", "step"], "schedule.gamma": {"value": 1.5}}
    found = problems(spec_of({**space, "optimizer.lr": LR}))
    assert found == {
        "space['schedule.gamma']": "with schedule.name='step', schedule.gamma=1.5 the trial "
        "is invalid: schedule.gamma: Input should be less than or equal to 1"
    }


def test_a_whole_schedule_with_a_field_out_of_bounds_is_refused() -> None:
    space = {
        "schedule": [{"name": "one_cycle", "max_lr": -1.0}],
        "seed": {"distribution": "int_uniform", "low": 0, "high": 9},
    }
    found = problems(spec_of(space))["space.schedule"]
    assert "schedule.max_lr: Input should be greater than 0" in found


def test_a_q_too_fine_to_round_with_is_refused() -> None:
    param = {"distribution": "q_uniform", "low": 1e-300, "high": 1e300, "q": 1e-300}
    found = problems(spec_of({"optimizer.lr": param}))
    assert "its values over q are too large to round" in found["space['optimizer.lr']"]


def test_cross_field_rules_are_checked_at_each_end() -> None:
    # end_lr 0.5 must stay above the lr, which reaches 1.0
    base = trial(optimizer=SGD, schedule={"name": "range_test", "end_lr": 0.5})
    found = problems(spec_of({"optimizer.lr": LR}, base=base))
    assert (
        "reaches 1.0: schedule.end_lr: end_lr (0.5) must be greater than optimizer.lr"
        in (found["space['optimizer.lr']"])
    )


def test_an_auto_lr_is_checked_over_the_range_tests_ramp_as_a_doubt() -> None:
    # The test's bounds lie within its ramp but rarely reach its ends: a warning, not a 422.
    base = trial(optimizer=SGD, schedule={"name": "range_test", "end_lr": 0.5})
    space = {"optimizer.lr": {"from": "range_test", "min_lr": 1e-5, "max_lr": 1.0}}
    assert checked(spec_of(space, method="grid", base=base)) == [
        "space['optimizer.lr']: log_uniform from 1e-05 to 1 reaches 1.0: schedule.end_lr: "
        "end_lr (0.5) must be greater than optimizer.lr (1.0), where the ramp starts; if the "
        "range test's bounds reach it, the sweep is cancelled"
    ]
    # the rest of the space is checked as ever
    found = problems(spec_of({**space, "schedule.name": ["step"], "schedule.gamma": [1.5]}))
    assert "schedule.gamma: Input should be less than or equal to 1" in " ".join(found.values())


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> int:
    """A small build budget, so that these tests build tens of trials, not thousands."""
    monkeypatch.setattr(space_check, "MAX_BUILDS", 40)
    return 40


def test_too_many_combinations_are_covered_value_by_value_with_a_warning(budget: int) -> None:
    seeds = list(range(budget // 2))
    space = {"batch_size": [16, 0], "seed": seeds, "optimizer.lr": LR}
    found = problems(spec_of(space))
    assert "with batch_size=0, seed=0 the trial is invalid" in found["space.batch_size"]
    warnings = checked(spec_of({**space, "batch_size": [16, 32]}))
    assert warnings == [
        f"space: its values make {2 * len(seeds)} combinations, too many to build each; lrlab "
        "built each value once (the other parameters at their first value)"
    ]


def test_a_check_stops_at_its_budget_and_says_so(budget: int) -> None:
    warnings = checked(spec_of({"seed": list(range(2 * budget)), "optimizer.lr": LR}))
    assert warnings[-1] == (
        f"space: lrlab stopped after building {budget} of its trials; a value after those "
        "that makes an invalid trial fails the trials that draw it"
    )


# -- the metric --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"method": "bayes"}, "method bayes models the metric"),
        ({"early_stop": {"pruner": "asha"}}, "early_stop (asha) stops trials by the metric"),
        ({"early_stop": {"pruner": "hyperband", "min_resource": 1}}, "early_stop (hyperband)"),
    ],
)
def test_bayes_and_early_stop_need_a_named_metric(fields: dict[str, Any], reason: str) -> None:
    method = fields.pop("method", "random")
    found = problems(spec_of({"optimizer.lr": LR}, method, **fields))
    assert reason in found["metric"] and "name the metric" in found["metric"]
    assert checked(spec_of({"optimizer.lr": LR}, method, metric=METRIC, **fields)) == []


@pytest.mark.parametrize("name", ["val_f1", "val_top1", "accuracy"])
def test_a_metric_the_task_does_not_log_is_refused_with_those_it_does(name: str) -> None:
    found = problems(spec_of({"optimizer.lr": LR}, metric={"name": name, "goal": "maximize"}))
    assert found == {
        "metric.name": f"task 'digits' does not log {name!r}; it logs val_loss, val_accuracy "
        "at each evaluation, and train_loss, lr, grad_norm, samples_per_sec"
    }


def test_every_task_the_sweep_trains_must_log_the_metric() -> None:
    metric = {"name": "val_accuracy", "goal": "maximize"}
    assert checked(spec_of({"optimizer.lr": LR}, metric=metric)) == []
    space = {"task.name": ["digits", "regression"], "optimizer.lr": LR}
    assert (
        "task 'regression' does not log 'val_accuracy'"
        in (problems(spec_of(space, metric=metric))["metric.name"])
    )


def test_early_stop_needs_an_evaluation_metric() -> None:
    metric = {"name": "train_loss", "goal": "minimize"}
    found = problems(spec_of({"optimizer.lr": LR}, metric=metric, early_stop={"pruner": "asha"}))
    assert found["metric.name"] == (
        "early_stop judges trials at their evaluations, where task 'digits' logs val_loss, "
        "val_accuracy; 'train_loss' is not among them"
    )


def test_metrics_logged_only_when_turned_on() -> None:
    metric = {"name": "swa_val_loss", "goal": "minimize"}
    found = problems(spec_of({"optimizer.lr": LR}, metric=metric))
    assert found["metric.name"] == "swa_val_loss is logged only with regularization.swa set"
    swa = {"regularization.swa": [{"swa_lr": 0.01, "start_epoch": 5}]}
    assert checked(spec_of({"optimizer.lr": LR, **swa}, metric=metric)) == []


def test_an_undeclared_tasks_metric_is_not_checked_but_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DigitsTask, "eval_metrics", None)
    metric = {"name": "val_f1", "goal": "maximize"}
    assert checked(spec_of({"optimizer.lr": LR}, metric=metric)) == [
        "metric.name: task 'digits' does not declare the metrics it logs, so lrlab cannot "
        "check that it logs 'val_f1'"
    ]


@pytest.mark.parametrize(
    ("name", "goal", "warning"),
    [
        (
            "val_accuracy",
            "minimize",
            "metric.goal: minimizing val_accuracy, where higher is better; did you mean maximize?",
        ),
        ("val_r2", "minimize", "did you mean maximize?"),
        (
            "val_loss",
            "maximize",
            "metric.goal: maximizing val_loss, where lower is better; did you mean minimize?",
        ),
        ("val_accuracy", "maximize", None),
        ("val_loss", "minimize", None),
        ("samples_per_sec", "maximize", None),
    ],
)
def test_a_goal_against_the_metrics_name_is_a_warning(
    name: str, goal: str, warning: str | None
) -> None:
    task = "regression" if name == "val_r2" else "digits"
    base = {"task": task, "optimizer": SGD}
    warnings = checked(
        spec_of({"optimizer.lr": LR}, base=base, metric={"name": name, "goal": goal})
    )
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warning in warnings[0]
