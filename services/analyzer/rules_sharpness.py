"""Sharpness against the optimizer's stability limit: a divergence seen coming.

The runner logs `sharpness`, the top eigenvalue of the training loss's Hessian, with
diagnostics.sharpness_every. Along that eigenvector the loss is, near the weights, a
quadratic with curvature lambda, and gradient descent there is a linear recurrence:
- plain SGD: x <- (1 - lr lambda) x, stable iff |1 - lr lambda| < 1, so lambda < 2/lr;
- heavy-ball momentum beta (torch's SGD: v <- beta v + (1 - dampening) g, x <- x - lr v):
  z^2 - (1 + beta - a) z + beta = 0 with a = lr (1 - dampening) lambda; both roots lie
  inside the unit circle iff 0 < a < 2 + 2 beta (the root that leaves first does so at
  z = -1), so lambda < (2 + 2 beta) / (lr (1 - dampening));
- Nesterov (torch's form, x <- x - lr (g + beta v)): z^2 - (1 + beta)(1 - a) z +
  beta (1 - a) = 0, stable iff a < (2 + 2 beta) / (1 + 2 beta).
Coupled weight decay wd adds wd to every curvature the update sees. Past the limit the
step overshoots along that direction by a growing factor each step: the loss blows up
unless the weights move somewhere flatter first.

Adaptive optimizers (Adam, AdamW, RMSprop, Adagrad) divide each step by a running gradient
scale, so their limit is on a preconditioned Hessian, not on the raw one measured here;
L-BFGS scales its steps by its own curvature estimate. For them this rule says nothing.

Full-batch gradient descent often drives the sharpness up to about 2/lr and keeps it
hovering there while the loss still falls, unevenly ("edge of stability"). So a crossing
alone is not reported on a finished run whose loss kept falling: there it is reported
only when the loss then rose. On a live run a crossing is reported unless the loss has
clearly fallen since; when the loss did blow up, the divergence finding says how many
steps earlier the sharpness had passed the limit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Finding, Value, confidence_from
from services.analyzer.recommend import fmt, lr_changes
from services.analyzer.rules_stability import divergence
from services.analyzer.stats import global_diff_sigma, median

__all__ = ["Crossing", "StabilityLimit", "divergence_or_sharpness", "first_crossing", "limit_of"]

# A crossing counts once this many estimates in a row are above the limit (one estimate on
# a mini-batch is noisy), or one estimate is this far above it.
CONFIRM = 2
CLEAR_RATIO = 1.5
# The loss "rose" / "fell" after the crossing by this many noise units of its bin medians.
MOVE_NOISE = 3.0


@dataclass(frozen=True)
class StabilityLimit:
    """The limit is `factor / lr`; `formula` says it the way the finding does."""

    factor: float
    formula: str


def limit_of(ctx: RunContext) -> StabilityLimit | None:
    """The optimizer's stability limit on the sharpness, or None where none applies."""
    if ctx.optimizer != "sgd" or ctx.momentum is None:
        return None
    beta, damp = ctx.momentum, ctx.dampening
    if beta == 0:
        return StabilityLimit(2.0, "2/lr")
    if ctx.nesterov:
        return StabilityLimit(
            (2 + 2 * beta) / (1 + 2 * beta), f"(2 + 2*{beta:g})/((1 + 2*{beta:g}) lr)"
        )
    if damp:
        return StabilityLimit((2 + 2 * beta) / (1 - damp), f"(2 + 2*{beta:g})/((1 - {damp:g}) lr)")
    return StabilityLimit(2 + 2 * beta, f"(2 + 2*{beta:g})/lr")


@dataclass(frozen=True)
class Crossing:
    step: int
    sharpness: float  # as measured, plus coupled weight decay
    limit: float  # factor / lr at that step
    lr: float
    worst_ratio: float  # the highest sharpness / limit from the crossing on
    formula: str


def first_crossing(curves: Curves, ctx: RunContext) -> Crossing | None:
    """The first confirmed estimate of the sharpness above the stability limit."""
    sharp, lr, limit = curves.track("sharpness"), curves.lr, limit_of(ctx)
    if sharp is None or lr is None or limit is None or lr.size == 0:
        return None
    index = np.clip(np.searchsorted(lr.steps, sharp.steps, side="right") - 1, 0, lr.size - 1)
    lrs = lr.values[index]
    usable = np.isfinite(sharp.values) & np.isfinite(lrs) & (lrs > 0)
    steps, lrs = sharp.steps[usable], lrs[usable]
    values = sharp.values[usable] + (ctx.weight_decay or 0.0)
    ratio = values * lrs / limit.factor
    above = ratio > 1.0
    for i in np.flatnonzero(above):
        run = above[i : i + CONFIRM]
        if (run.size == CONFIRM and bool(run.all())) or ratio[i] >= CLEAR_RATIO:
            return Crossing(
                step=int(steps[i]),
                sharpness=float(values[i]),
                limit=float(limit.factor / lrs[i]),
                lr=float(lrs[i]),
                worst_ratio=float(np.max(ratio[i:])),
                formula=limit.formula,
            )
    return None


def _loss_move(curves: Curves, step: int) -> float | None:
    """How far the loss moved from the crossing to the end, in noise units of its bin
    medians (working scale): > 0 risen, < 0 fallen; None without a loss to judge."""
    p = curves.train_log
    if p is None or p.bins.size < 3:
        return None
    b = p.bins
    at = int(np.clip(np.searchsorted(b.lo, step, side="right") - 1, 0, b.size - 1))
    k = max(2, b.size // 20)
    late = float(median(b.med[max(at, b.size - k) :]))
    sigma = global_diff_sigma(b.med)
    if sigma <= 0:
        return None
    return (late - float(b.med[at])) / sigma


def _warning(crossing: Crossing, ctx: RunContext, moved: float) -> Finding:
    safe = crossing.limit * crossing.lr / crossing.sharpness  # the lr with this limit
    # Half the lr at which the measured curvature would sit on the limit: the sharpness
    # tends to rise to meet whatever limit the lr sets, so the edge itself is no target.
    factor = 0.5 * safe / crossing.lr
    changes = lr_changes(ctx, factor, crossing.lr)
    happened = (
        "the loss has not blown up yet"
        if moved <= MOVE_NOISE
        else "the loss has risen since, without blowing up yet"
    )
    summary = (
        f"sharpness {fmt(crossing.sharpness)} passed the stability limit {crossing.formula} "
        f"= {fmt(crossing.limit)} at step {crossing.step} (lr {fmt(crossing.lr)}); {happened}: "
        f"lower the lr below {fmt(safe)}."
    )
    evidence: dict[str, Value] = {
        "sharpness": crossing.sharpness,
        "stability_limit": crossing.limit,
        "step": crossing.step,
        "lr": crossing.lr,
        "limit_formula": crossing.formula,
        "early_warning": True,
    }
    return Finding(
        kind="divergence",
        severity="warning",
        confidence=confidence_from(crossing.worst_ratio, running=ctx.running),
        step=crossing.step,
        summary=summary,
        evidence=evidence,
        recommendation=(
            f"Lower the lr below {fmt(safe)}, where the measured curvature "
            f"{fmt(crossing.sharpness)} would be stable, to about {fmt(0.5 * safe)} for a "
            "margin: past the limit each step overshoots along the sharpest direction by "
            "more than the last."
        ),
        changes=changes,
    )


def _with_lead(found: Finding, crossing: Crossing) -> Finding:
    lead = (found.step or 0) - crossing.step
    evidence = {
        **found.evidence,
        "sharpness_warned_at": crossing.step,
        "sharpness": crossing.sharpness,
        "stability_limit": crossing.limit,
    }
    summary = (
        f"{found.summary} The sharpness {fmt(crossing.sharpness)} had passed the stability "
        f"limit {crossing.formula} = {fmt(crossing.limit)} at step {crossing.step}, "
        f"{lead} steps earlier."
    )
    return dataclasses.replace(found, evidence=evidence, summary=summary)


def divergence_or_sharpness(curves: Curves, ctx: RunContext) -> Finding | None:
    """The divergence rule, told by the sharpness: a blow-up it saw coming carries the
    crossing; a crossing with no blow-up (yet) is a warning of its own."""
    found = divergence(curves, ctx)
    crossing = first_crossing(curves, ctx)
    if crossing is None:
        return found
    if found is not None:
        if found.step is not None and crossing.step <= found.step:
            return _with_lead(found, crossing)
        return found
    if ctx.cyclical:
        return None  # the schedule raises the lr by design; the divergence rule judges it
    moved = _loss_move(curves, crossing.step)
    if ctx.running and (moved is None or moved >= -MOVE_NOISE):
        # Live, and the loss has not clearly fallen since (or is too short to tell).
        return _warning(crossing, ctx, moved or 0.0)
    if moved is not None and moved > MOVE_NOISE:
        return _warning(crossing, ctx, moved)
    return None
