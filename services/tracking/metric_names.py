"""Which logged series an external run's analysis reads, for each name the rules know.

lrlab's own workers log `train_loss`, `val_loss`, `val_accuracy`, `lr` and `grad_norm`.
A run trained elsewhere logs what its framework logs (`loss`, `eval_loss`,
`learning_rate`, `lr-Adam`, ...). Each canonical series is read from the first name the
run logged among: the names the run declared for it (`metric_names` on POST /runs), the
canonical name itself, then the aliases below in order. docs/metric-names.md is the
table for users; a unit test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from services.domain.errors import InvalidInput
from services.domain.metric_aliases import ALIASES

# The series the rules read; a run may log others, which the analysis ignores.
CANONICAL = tuple(ALIASES)

T = TypeVar("T")


def checked_mapping(declared: Mapping[str, str]) -> dict[str, str]:
    """A run's own `metric_names` (logged name -> canonical name), or InvalidInput naming
    the field and the rule: every target is an analysed series, and has one source."""
    seen: dict[str, str] = {}
    for source, target in declared.items():
        if target not in CANONICAL:
            raise InvalidInput(
                f"maps {source!r} to {target!r}, which is not an analysed series; "
                f"targets are {', '.join(CANONICAL)}",
                field="metric_names",
            )
        if target in seen:
            raise InvalidInput(
                f"maps both {seen[target]!r} and {source!r} to {target!r}; "
                "each analysed series is read from one name",
                field="metric_names",
            )
        seen[target] = source
    return dict(declared)


@dataclass(frozen=True)
class MetricNames:
    """How one external run's series are found: `declared` is its checked mapping."""

    declared: Mapping[str, str] = field(default_factory=dict)

    def sources(self, canonical: str) -> tuple[str, ...]:
        """The names `canonical` may be read from, first choice first. A name the run
        declared for one series is never read as another."""
        declared = tuple(s for s, target in self.declared.items() if target == canonical)
        fallbacks = (canonical, *ALIASES[canonical])
        return declared + tuple(n for n in fallbacks if n not in self.declared)

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every name any canonical series may come from: what to read in one go."""
        return tuple(dict.fromkeys(n for c in CANONICAL for n in self.sources(c)))

    def pick(self, logged: Mapping[str, T]) -> dict[str, T]:
        """canonical name -> the first of its sources found in `logged` (a read of
        `candidates`); canonical series the run did not log are left out."""
        picked = {}
        for canonical in CANONICAL:
            found = next((n for n in self.sources(canonical) if n in logged), None)
            if found is not None:
                picked[canonical] = logged[found]
        return picked
