"""The search engine driven directly: reproducible random draws, Optuna samplers asked from
a rebuilt history, and Bayesian search beating random search on a toy objective."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from pydantic import ValidationError

from services.domain.records import PastTrial, TrialStatus
from services.search.engine import METHODS, OptunaSearch, RandomSearch, search_for
from services.search.study import optuna_state
from services.specs import SweepSpec

LR = {"distribution": "log_uniform", "low": 1e-5, "high": 1.0}


def spec_of(method: str, space: dict[str, Any], **extra: Any) -> SweepSpec:
    return SweepSpec.model_validate(
        {"base": {"task": "digits"}, "method": method, "space": space, **extra}
    )


def run(spec: SweepSpec, objective: Any, n: int) -> list[PastTrial]:
    """Ask n trials one after the other, each finished before the next is asked."""
    search = search_for(spec)
    trials: list[PastTrial] = []
    for number in range(n):
        params = search.ask(spec.space, trials, number)
        value = objective(params)
        trials.append(PastTrial(number, TrialStatus.SUCCEEDED, params, (value * 2, value)))
    return trials


def test_random_is_reproducible_per_trial_number_and_seed() -> None:
    spec = spec_of("random", {"optimizer.lr": LR, "batch_size": [16, 32, 64]}, seed=7)
    search = search_for(spec)
    assert isinstance(search, RandomSearch) and not search.uses_history
    first = [search.ask(spec.space, [], n) for n in range(20)]
    # Asked in another order (another scheduler, after a restart): the same trials.
    assert [search.ask(spec.space, [], n) for n in reversed(range(20))][::-1] == first
    assert len({p["optimizer.lr"] for p in first}) == 20
    other_seed = search_for(spec.model_copy(update={"seed": 8}))
    assert other_seed.ask(spec.space, [], 0) != first[0]


def test_lazy_methods_registry_and_refusals() -> None:
    assert set(METHODS) == {"random", "bayes"}
    with pytest.raises(ValueError, match="lazy methods: random, bayes"):
        search_for(spec_of("grid", {"seed": [1, 2]}))


def test_bayes_options_are_checked() -> None:
    with pytest.raises(ValidationError) as info:
        spec_of("bayes", {"optimizer.lr": LR}, bayes={"sampler": "cmaes"})
    assert "'tpe' or 'gp'" in str(info.value)
    with pytest.raises(ValidationError, match="bayes options apply to method 'bayes' only"):
        spec_of("random", {"optimizer.lr": LR}, bayes={"sampler": "tpe"})
    with pytest.raises(ValidationError, match="unknown key 'trials'"):
        spec_of("bayes", {"optimizer.lr": LR}, bayes={"trials": 3})


def test_optuna_states_of_stored_trials() -> None:
    def state(status: TrialStatus, *values: float) -> str | None:
        found = optuna_state(PastTrial(0, status, {}, values))
        return None if found is None else found.name

    assert state(TrialStatus.SUCCEEDED, 1.0, 0.5) == "COMPLETE"
    assert state(TrialStatus.SUCCEEDED, 1.0, math.nan) == "PRUNED"  # ranked below complete
    assert state(TrialStatus.SUCCEEDED) is None  # never evaluated its metric
    assert state(TrialStatus.PRUNED, 1.0) == "PRUNED"
    assert state(TrialStatus.QUEUED) == "RUNNING"  # constant liar: a point already taken
    assert state(TrialStatus.RUNNING, 0.3) == "RUNNING"
    assert state(TrialStatus.FAILED, 0.3) is None
    assert state(TrialStatus.CANCELLED) is None


def test_tpe_maps_choices_of_objects_and_nested_paths() -> None:
    optimizers = [{"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam", "lr": 0.001}]
    space = {
        "optimizer": optimizers,
        "regularization.dropout": {"distribution": "uniform", "low": 0.0, "high": 0.5},
    }
    spec = spec_of("bayes", space, bayes={"n_startup_trials": 2})

    def objective(p: dict[str, Any]) -> float:
        return (0.0 if p["optimizer"]["name"] == "adam" else 1.0) + p["regularization.dropout"]

    trials = run(spec, objective, 12)
    for trial in trials:
        assert trial.params["optimizer"] in optimizers
        assert 0.0 <= trial.params["regularization.dropout"] <= 0.5
    # After its startup trials, TPE mostly asks for the better optimizer.
    late = [t.params["optimizer"]["name"] for t in trials[6:]]
    assert late.count("adam") >= 4


def test_trials_outside_the_space_are_left_out_not_fatal() -> None:
    spec = spec_of("bayes", {"optimizer.lr": LR}, bayes={"n_startup_trials": 0})
    search = search_for(spec)
    stray = [
        PastTrial(0, TrialStatus.SUCCEEDED, {"optimizer.lr": 5.0}, (0.1,)),  # out of bounds
        PastTrial(1, TrialStatus.SUCCEEDED, {"other": 1}, (0.1,)),  # no such path
        PastTrial(2, TrialStatus.SUCCEEDED, {"optimizer.lr": 0.01}, (0.2,)),
    ]
    lr = search.ask(spec.space, stray, 3)["optimizer.lr"]
    assert isinstance(lr, float) and 1e-5 <= lr <= 1.0


def test_gp_sampler_asks_in_support_after_its_startup() -> None:
    spec = spec_of("bayes", {"optimizer.lr": LR}, bayes={"sampler": "gp", "n_startup_trials": 2})
    search = search_for(spec)
    assert isinstance(search, OptunaSearch)
    trials = run(spec, lambda p: (math.log10(p["optimizer.lr"]) + 2) ** 2, 3)
    assert all(1e-5 <= t.params["optimizer.lr"] <= 1.0 for t in trials)


def toy(params: dict[str, Any]) -> float:
    """A seeded toy objective: best at lr 1e-2.5 and momentum 0.9, in two log decades."""
    return (math.log10(params["optimizer.lr"]) + 2.5) ** 2 + 4 * (
        params["optimizer.momentum"] - 0.9
    ) ** 2


def test_bayes_beats_random_over_repeated_seeds() -> None:
    space = {
        "optimizer.lr": LR,
        "optimizer.momentum": {"distribution": "uniform", "low": 0.0, "high": 0.99},
    }
    best: dict[str, list[float]] = {"random": [], "bayes": []}
    for seed in range(20):
        for method in best:
            extra = {"bayes": {"n_startup_trials": 8}} if method == "bayes" else {}
            spec = spec_of(method, space, seed=seed, **extra)
            trials = run(spec, toy, 25)
            best[method].append(min(t.values[-1] for t in trials))
    tpe, rnd = statistics.median(best["bayes"]), statistics.median(best["random"])
    assert tpe < rnd, (tpe, rnd)
    wins = sum(b < r for b, r in zip(best["bayes"], best["random"], strict=True))
    assert wins >= 12, (wins, best)
