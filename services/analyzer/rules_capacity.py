"""Underfitting: train and val losses both flat, close together and still high.

"High" assumes a loss whose floor is 0 (cross-entropy, MSE): the final train loss is still
at least HIGH_SHARE of its start, the start estimated with its standard error from the
curve's own noise (LossProfile.settled_start). A loss that ended above where it started is not a
capacity problem (the model got worse, it did not fail to improve): that is left to the
stability rules. Levels are compared on means over the tail, not medians: a batch loss
is right-skewed (heavy-tailed errors), so the median batch sits below the val loss of
the very same model.
"""

from __future__ import annotations

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Value, confidence_from
from services.analyzer.recommend import fmt
from services.analyzer.rules_progress import (
    FLAT_NOISE,
    HIGH_SHARE,
    MIN_BINS,
    budget_seen,
    lr_up,
    lr_up_text,
)
from services.analyzer.spec_text import changes_text
from services.analyzer.stats import median

__all__ = ["underfitting"]

FLAT_SHOWN = 0.1
GAP_SHARE = 0.25
TAIL = 0.4
START_SE = 2.0


def underfitting(curves: Curves, ctx: RunContext) -> Finding | None:
    """Train and val losses both flat, close together and still high."""
    p, v = curves.train_linear, curves.val_linear
    if p is None or v is None or not budget_seen(curves, ctx):
        return None
    if ctx.swa_start_step is not None:
        v = v.before(ctx.swa_start_step)
    mask = p.usable
    if int(mask.sum()) < MIN_BINS or v.size < 5:
        return None
    if not (bool(np.all(p.y > 0)) and bool(np.all(v.y > 0))):
        return None  # "high" needs a floor at zero
    m = ctx.margin
    c = p.bins.center[mask]
    fit = p.iso(mask)
    span = float(c[-1] - c[0])
    tail_from = c[0] + (1 - TAIL) * span
    tail = c >= tail_from
    start, start_se = p.settled_start()
    drop = max(start - float(np.min(p.bins.med[mask])), 0.0)
    noise = p.noise_m(mask)
    eps = m * max(FLAT_NOISE * noise, 0.05 * drop)
    train_tail = float(fit[tail][0] - fit[-1])
    k = max(2, int(mask.sum()) // 10)
    train_final = float(median(p.bins.med[mask][-k:]))
    vt = v.steps >= tail_from
    if int(vt.sum()) < 2:
        return None
    v_drop = max(v.start - float(np.min(v.smooth)), 0.0)
    v_eps = m * max(FLAT_NOISE * v.sigma, 0.05 * v_drop)
    v_tail = v.smooth[vt]
    val_final = float(median(v.y[-max(2, v.size // 10) :]))
    flat = train_tail <= eps and abs(float(v_tail[0] - v_tail[-1])) <= v_eps
    # "Flat" must be shown, not merely not refuted: one of the two curves is quiet enough
    # that a change of a tenth of its level would have stood out.
    shown = min(eps / max(train_final, 1e-300), v_eps / max(val_final, 1e-300)) <= FLAT_SHOWN
    flat = flat and shown
    # Within its noise of the start at most: a loss that ended above it got worse. At
    # least half of it left, as far as the start is known: the start of a noisy curve
    # (small batches of a heavy-tailed loss) is a median of a few batches, and "half"
    # is judged against it within START_SE of its standard errors, as "flat" is judged
    # within the noise, provided the start is known to a tenth (as "flat" must be
    # shown, "high" must be measurable).
    known = start_se <= FLAT_SHOWN * abs(start)
    bar = min(1.0, HIGH_SHARE * m) * (start - (START_SE * start_se if known else 0.0))
    high = start + eps >= train_final >= bar
    last_steps = p.steps >= p.bins.lo[mask][-k]
    train_mean = float(np.mean(p.y[last_steps])) if bool(last_steps.any()) else train_final
    # The two splits may differ in level from the start (a heavy-tailed loss on a finite
    # split): only a gap beyond that first offset is a generalization gap.
    offset = max(v.start - start, 0.0)
    close = val_final - train_mean <= GAP_SHARE * train_mean + offset
    if not (flat and high and close):
        return None
    flat_from = int(np.flatnonzero(fit - fit[-1] <= eps)[0])
    step = int(p.bins.lo[mask][flat_from])
    changes = lr_up(ctx, curves, 3.0)
    wider: dict[str, Value] = {}
    if ctx.hidden:
        wider["task.hidden"] = tuple(2 * w for w in ctx.hidden)
    alternatives: list[Alternative] = [
        Alternative(f"Or give the model more capacity{_colon(wider, ctx)}.", wider)
    ]
    if ctx.weight_decay or ctx.dropout:
        reg: dict[str, Value] = {}
        if ctx.weight_decay:
            reg[ctx.weight_decay_path] = 0.0
        if ctx.dropout:
            reg["regularization.dropout"] = 0.0
        alternatives.append(
            Alternative(f"Or drop the regularization that holds it back{_colon(reg, ctx)}.", reg)
        )
    if ctx.total_steps:
        longer: dict[str, Value] = {"budget.max_steps": 2 * ctx.total_steps}
        alternatives.append(Alternative(f"Or train longer{_colon(longer, ctx)}.", longer))
    return Finding(
        kind="underfitting",
        severity="warning",
        confidence=confidence_from(train_final / (HIGH_SHARE * start), running=ctx.running),
        step=step,
        summary=(
            f"train_loss (smoothed) went only from {fmt(start)} to {fmt(train_final)} and has "
            f"been flat since step {step}; val_loss (median) is flat at {fmt(val_final)}, "
            "close to it: the model does not fit even the training data."
        ),
        evidence={
            "train_start_smoothed": start,
            "train_final_smoothed": train_final,
            "val_final_median": val_final,
            "train_start_se": start_se,
            "share_remaining": train_final / start,
            "flat_since_step": step,
        },
        recommendation=(
            "Give the model more capacity (wider or deeper), train longer, or raise "
            f"{lr_up_text(ctx, curves, changes, 3.0)}: both curves stopped improving at a "
            "high loss, with no generalization gap to protect."
        ),
        changes=changes,
        alternatives=tuple(alternatives),
    )


def _colon(changes: dict[str, Value], ctx: RunContext) -> str:
    """': <the changes>' (nothing when there are none to name)."""
    return f": {changes_text(changes, ctx)}" if changes else ""
