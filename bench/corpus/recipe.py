"""A recipe: a trial spec that causes one condition, the seeds to run it with, and why.

`kind` is the primary label every curve of the recipe carries; `also` lists the other
kinds the same settings legitimately produce (a far too high lr also makes the gradient
norm explode), which the scorer accepts but does not require.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.analyzer import KINDS

__all__ = ["Recipe", "recipe", "spec_for", "trial"]


@dataclass(frozen=True)
class Recipe:
    name: str  # "<kind>/<task>-<what>", unique
    kind: str
    task: str  # the task family: digits, regression, text, cartpole
    spec: dict[str, Any]  # a TrialSpec without its seed
    why: str  # how the settings cause the condition
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    also: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for kind in (self.kind, *self.also):
            if kind not in KINDS:
                raise ValueError(f"{self.name}: unknown kind {kind!r}")
        if not self.name.startswith(f"{self.kind}/{self.task}-"):
            raise ValueError(f"{self.name}: name must start with '{self.kind}/{self.task}-'")


def recipe(kind: str, task: str, what: str, spec: dict[str, Any], why: str, **kw: Any) -> Recipe:
    """A recipe named "<kind>/<task>-<what>"."""
    return Recipe(f"{kind}/{task}-{what}", kind, task, spec, why, **kw)


def spec_for(recipe: Recipe, seed: int) -> dict[str, Any]:
    """The recipe's spec for one seed; checkpoints are left out (nothing resumes here)."""
    return {"checkpoint_every": 10**9, **recipe.spec, "seed": seed}


def trial(
    task: dict[str, Any], optimizer: dict[str, Any], steps: int, eval_every: int = 20, **rest: Any
) -> dict[str, Any]:
    """A TrialSpec dict: a step budget (so the analyzer knows it) and regular evaluations."""
    return {
        "task": task,
        "optimizer": optimizer,
        "budget": {"max_steps": steps},
        "eval_every": eval_every,
        **rest,
    }
