"""The search engine of lazy sweeps: the params of a sweep's next trial, asked for one at a
time as capacity frees, from what its past trials did.

One small port, `Search`, with two implementations:
- `RandomSearch` draws every parameter with `distributions.sample`, from a generator seeded
  by (sweep seed, trial number): the same sweep asks the same trials in any order, on any
  scheduler, after any restart;
- `OptunaSearch` rebuilds the sweep as an in-memory Optuna study (`search.study`), asks its
  sampler once (ask/tell: the store did the telling), and maps the internal values back
  through `to_optuna`'s transforms. The sampler's seed is derived the same way.

Methods and Bayesian samplers are registries: one dict each, from name to a builder.
A parameter whose bounds are not known yet (say, an lr range to come from a range test)
is the caller's business: it resolves the space before asking (see `services.sweeps.lazy_trials`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from optuna.samplers import BaseSampler, GPSampler, TPESampler
from pydantic import JsonValue

from services.domain.records import PastTrial
from services.search.distributions import Param, sample, to_optuna
from services.search.study import Goal, add_trial, new_study
from services.specs.bayes import BAYES_SAMPLERS, BayesOptions
from services.specs.sweep import SweepSpec

__all__ = [
    "BAYES",
    "METHODS",
    "OptunaSearch",
    "RandomSearch",
    "Search",
    "search_for",
    "trial_seed",
]

Space = Mapping[str, Param]


def trial_seed(sweep_seed: int, number: int) -> int:
    """A 32-bit seed for trial `number` of a sweep seeded `sweep_seed`."""
    return int(np.random.SeedSequence([sweep_seed, number]).generate_state(1)[0])


class Search(abc.ABC):
    """Draws the params of a sweep's next trial."""

    # False: ask() ignores `past`, so the caller need not read the sweep's metrics.
    uses_history: bool = True

    @abc.abstractmethod
    def ask(self, space: Space, past: Sequence[PastTrial], number: int) -> dict[str, JsonValue]:
        """The params (dotted path -> value) of trial `number`, given the sweep's trials."""


class RandomSearch(Search):
    uses_history = False

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def ask(self, space: Space, past: Sequence[PastTrial], number: int) -> dict[str, JsonValue]:
        rng = np.random.default_rng(trial_seed(self._seed, number))
        return {path: sample(param, rng) for path, param in space.items()}


class OptunaSearch(Search):
    """Ask an Optuna sampler, built afresh for each ask from `make_sampler(seed)`."""

    def __init__(self, make_sampler: Callable[[int], BaseSampler], goal: Goal, seed: int) -> None:
        self._make_sampler = make_sampler
        self._goal = goal
        self._seed = seed

    def ask(self, space: Space, past: Sequence[PastTrial], number: int) -> dict[str, JsonValue]:
        params = {path: to_optuna(param) for path, param in space.items()}
        distributions = {path: p.distribution for path, p in params.items()}
        study = new_study(self._goal, sampler=self._make_sampler(trial_seed(self._seed, number)))
        for trial in past:
            try:
                internal = {path: params[path].to_internal(trial.params[path]) for path in params}
                add_trial(study, trial, params=internal, distributions=distributions)
            except (KeyError, ValueError):
                # Params outside today's space (a resolved bound moved, a path was added):
                # the sampler could not place the trial, so it is left out.
                continue
        asked = study.ask(distributions)
        return {path: params[path].to_value(asked.params[path]) for path in params}


def _tpe(options: BayesOptions, seed: int) -> BaseSampler:
    return TPESampler(seed=seed, n_startup_trials=options.n_startup_trials, constant_liar=True)


def _gp(options: BayesOptions, seed: int) -> BaseSampler:
    return GPSampler(seed=seed, n_startup_trials=options.n_startup_trials)


BAYES: dict[str, Callable[[BayesOptions, int], BaseSampler]] = {"tpe": _tpe, "gp": _gp}
if tuple(BAYES) != BAYES_SAMPLERS:  # the spec's names and this registry must not drift
    raise RuntimeError(f"bayes samplers {tuple(BAYES)} differ from the spec's {BAYES_SAMPLERS}")


def _bayes(spec: SweepSpec) -> Search:
    options = spec.bayes or BayesOptions()
    build = BAYES[options.sampler]
    return OptunaSearch(lambda seed: build(options, seed), spec.metric.goal, spec.seed)


METHODS: dict[str, Callable[[SweepSpec], Search]] = {
    "random": lambda spec: RandomSearch(spec.seed),
    "bayes": _bayes,
}


def search_for(spec: SweepSpec) -> Search:
    """The search of a lazy sweep; ValueError naming the lazy methods for any other."""
    if spec.method not in METHODS:
        raise ValueError(
            f"method {spec.method!r} does not ask for trials lazily; "
            f"lazy methods: {', '.join(METHODS)}"
        )
    return METHODS[spec.method](spec)
