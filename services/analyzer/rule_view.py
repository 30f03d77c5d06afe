"""What the rules see in a run: every rule's finding, and those that stand once the
findings that explain others have been taken into account.

After a divergence, the flat or bouncing curve before it is not a separate problem; a
loss that bounces is not also "slow" or "stuck" (those would say: raise the lr).
Underfitting covers a plateau that lasts to the end, and so do vanishing gradients (its
cause) and exploding gradients (no progress while the gradient explodes is instability);
a steady slow decline is not "stuck"; a plateau escaped late explains a fast fall at the
end; an lr schedule that starved the run explains a flat, high loss better than capacity.

The settled view is what the kind classifier reads of the rules (one vote per kind); the
primary finding is decided in diagnose.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Finding
from services.analyzer.rules import RULES

__all__ = ["SUPPRESSES", "rule_findings", "settle"]

SUPPRESSES: dict[str, frozenset[str]] = {
    "divergence": frozenset(
        {
            "oscillation",
            "slow_convergence",
            "plateau",
            "underfitting",
            "overfitting",
            "vanishing_gradients",
        }
    ),
    "oscillation": frozenset({"slow_convergence", "plateau", "underfitting"}),
    # The gradient cannot move the early layers: "raise the lr" or "add capacity" would
    # treat the symptom (a flat, high loss) and miss the cause.
    "vanishing_gradients": frozenset({"slow_convergence", "plateau", "underfitting"}),
}


def rule_findings(curves: Curves, ctx: RunContext) -> dict[str, Finding]:
    """Every rule's finding, by kind (rules that did not fire are absent)."""
    found = {}
    for kind, rule in RULES.items():
        finding = rule(curves, ctx)
        if finding is not None:
            found[kind] = finding
    return found


def settle(found: Mapping[str, Finding]) -> dict[str, Finding]:
    """The findings that stand once those explained by another are dropped."""
    drop: set[str] = set()
    for kind, suppressed in SUPPRESSES.items():
        if kind in found:
            drop |= suppressed
    plateau = found.get("plateau")
    if plateau is not None:
        if plateau.evidence.get("lr_starved"):
            # The schedule stopped the run: not the model's capacity, not a slow lr.
            drop |= {"underfitting", "slow_convergence"}
        elif plateau.evidence.get("escaped"):
            # The fall at the end is the escape from the plateau, not a slow pace.
            drop.add("slow_convergence")
        elif "slow_convergence" in found:
            # A steady decline (measured where it is least noisy) is not "no progress".
            drop.add("plateau")
        elif "underfitting" in found or "vanishing_gradients" in found:
            drop.add("plateau")  # a flat run to the end is what those describe
        elif "exploding_gradients" in found:
            # No progress while the gradient explodes is instability: "raise the lr, the
            # steps are too small" would contradict the finding that explains it.
            drop.add("plateau")
    return {kind: f for kind, f in found.items() if kind not in drop}
