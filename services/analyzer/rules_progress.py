"""Progress rules: slow convergence, plateau, underfitting (the lr too low, or the model
unable to fit).

Shapes are judged on a monotone (isotonic) fit of the train_loss bin medians over the
window (after warmup, before SWA, outside lr rises), so noise and by-design bumps do not
count as progress or as its absence. Slowness is judged on a linear scale: a healthy loss
falling to zero is a straight line on a log scale and must not read as "not slowing".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Severity, Value, confidence_from
from services.analyzer.recommend import fmt, lr_changes, nice
from services.analyzer.stats import MEDIAN_EFFICIENCY, FloatArray, isotonic_decreasing

__all__ = ["plateau", "slow_convergence", "underfitting"]

MIN_BINS = 12
MIN_EVALS = 8
# Slow: the last quarter still removes this share of what the first quarter did, and of
# the whole drop (an exponential decay with a time constant near the run length).
SLOW_RATIO = 0.4
SLOW_SHARE = 0.15
PROGRESS_NOISE = 6.0
# Plateau: flat within this many bin-median noises (or this share of the drop) for at
# least this share of the run, then a further drop of at least this share.
FLAT_NOISE = 4.0
FLAT_OF_DROP = 0.03
FLAT_SPAN = 0.2
ESCAPE_OF_DROP = 0.2
ESCAPE_NOISE = 8.0
# Stuck: the last third not below the first by 3 standard errors of their difference;
# a live run only after this share of its budget.
STUCK_SE = 3.0
STUCK_RUNNING_SHARE = 0.2
# Underfitting ("high" assumes a loss whose floor is 0, as cross-entropy and MSE): the
# final train loss is still at least this share of its start, val tracks train, and
# neither moved in the last 40% of the run.
HIGH_SHARE = 0.5
GAP_SHARE = 0.25
TAIL = 0.4
# A running trial is judged on budget-relative rules only past this share of its budget.
RUNNING_MIN_SHARE = 0.5


def _budget_seen(curves: Curves, ctx: RunContext) -> bool:
    """Enough of the budget has run to judge the pace of the whole run."""
    track = curves.track("train_loss")
    if track is None:
        return False
    last = int(track.steps[-1])
    if ctx.total_steps is None:
        return not ctx.running
    return last + 1 >= RUNNING_MIN_SHARE * ctx.total_steps


def _lr_up(ctx: RunContext, curves: Curves, factor: float) -> dict[str, Value]:
    observed = None if curves.lr is None else float(curves.lr.values[-1])
    return lr_changes(ctx, factor, observed)


@dataclass(frozen=True)
class _Pace:
    """A loss's monotone trend over the window, to judge how fast it still falls."""

    metric: str
    steps: FloatArray
    fit: FloatArray
    noise: float  # of one fitted point
    raw: Callable[[float], float]

    def at(self, share: float) -> float:
        c = self.steps
        return float(np.interp(c[0] + share * (c[-1] - c[0]), c, self.fit))


def _train_pace(curves: Curves) -> _Pace | None:
    p = curves.train_linear
    if p is None or int(p.usable.sum()) < MIN_BINS:
        return None
    mask = p.usable
    return _Pace("train_loss", p.bins.center[mask], p.iso(mask), p.noise_m(mask), p.raw)


def _val_pace(curves: Curves, ctx: RunContext) -> _Pace | None:
    """val_loss, for when the per-step train loss is too noisy to show its pace: one
    evaluation on a fixed set is far quieter than one batch."""
    v, p = curves.val_linear, curves.train_linear
    if v is None or (p.by_design[p.window].any() if p is not None else ctx.cyclical):
        return None
    keep = v.steps >= ctx.warmup_steps
    if ctx.swa_start_step is not None:
        keep &= v.steps < ctx.swa_start_step
    if int(keep.sum()) < MIN_EVALS:
        return None
    fit = isotonic_decreasing(v.smooth[keep], np.ones(int(keep.sum())))
    return _Pace("val_loss", v.steps[keep].astype(float), fit, v.sigma, v.raw)


def slow_convergence(curves: Curves, ctx: RunContext) -> Finding | None:
    """Still falling steadily at the end, with no slowdown: the lr is too small."""
    if not _budget_seen(curves, ctx):
        return None
    m = ctx.margin
    for pace in (_train_pace(curves), _val_pace(curves, ctx)):
        if pace is None:
            continue
        first, last = pace.at(0.0) - pace.at(0.25), pace.at(0.75) - pace.at(1.0)
        total = pace.at(0.0) - pace.at(1.0)
        if total < m * PROGRESS_NOISE * pace.noise or first <= 0:
            continue  # no clear progress in this one: the next may show it
        need = max(SLOW_RATIO * first, SLOW_SHARE * total, 3 * pace.noise)
        if last < m * need:
            return None
        return _slow_finding(pace, first, last, total, need, curves, ctx)
    return None


def _slow_finding(
    pace: _Pace,
    first: float,
    last: float,
    total: float,
    need: float,
    curves: Curves,
    ctx: RunContext,
) -> Finding:
    span = float(pace.steps[-1] - pace.steps[0])
    # An exponential decay e^(-t/tau) has last/first = e^(-0.75 span/tau); aim for
    # tau = span/5 (well converged by the end), assuming the pace scales with the lr.
    tau = 0.75 * span / np.log(first / last) if first > last else np.inf
    factor = float(np.clip(tau / (span / 5), 2.0, 10.0))
    changes = _lr_up(ctx, curves, factor)
    alternatives = []
    if ctx.optimizer in (None, "sgd"):
        alternatives.append(
            Alternative(
                "Or switch to an adaptive optimizer, which takes steps of a useful size "
                "whatever the gradient scale.",
                {"optimizer.name": "adam", "optimizer.lr": 1e-3},
            )
        )
    if ctx.total_steps:
        longer = int(nice(ctx.total_steps * factor, above=ctx.total_steps))
        alternatives.append(
            Alternative(
                f"Or train {fmt(longer / ctx.total_steps)}x longer at the same lr.",
                {"budget.max_steps": longer},
            )
        )
    start_step, end_step = int(pace.steps[0]), int(pace.steps[-1])
    r = pace.raw
    return Finding(
        kind="slow_convergence",
        severity="warning",
        confidence=confidence_from(last / need, running=ctx.running),
        step=start_step,
        summary=(
            f"{pace.metric} fell steadily from {fmt(r(pace.at(0.0)))} at step {start_step} to "
            f"{fmt(r(pace.at(1.0)))} at step {end_step} and is still falling: the last quarter "
            f"removed {fmt(last)} against {fmt(first)} in the first (no slowdown)."
        ),
        evidence={
            "metric": pace.metric,
            "first_quarter_drop": first,
            "last_quarter_drop": last,
            "total_drop": total,
            "time_constant_steps": float(tau) if np.isfinite(tau) else None,
            "span_steps": span,
        },
        recommendation=(
            f"Raise the lr about {fmt(factor)}x: the last quarter of the run still removed "
            f"{fmt(100 * last / first)}% as much loss as the first, so the run ended far from "
            "converged, and while the lr is this far below stable the pace grows with it."
        ),
        changes=changes,
        alternatives=tuple(alternatives),
    )


def _no_progress(med: FloatArray, noise_m: float, margin: float) -> bool:
    """The last third of the bins is not significantly below the first third.

    Compared third against third, not bin against bin: the difference of two medians of
    many bin medians is known far more precisely than one bin, so a slow but real descent
    is not mistaken for "stuck", and a noisy short curve is not called flat by default."""
    third = max(3, med.size // 3)
    if med.size < 2 * third:
        return False
    first, last = float(np.median(med[:third])), float(np.median(med[-third:]))
    se = MEDIAN_EFFICIENCY * noise_m * np.sqrt(2.0 / third)
    return bool(first - last <= margin * STUCK_SE * se)


def _long_enough(curves: Curves, ctx: RunContext, span: float) -> bool:
    """A live run is called stuck only after a fair share of its budget."""
    if not ctx.running:
        return True
    return ctx.total_steps is not None and span >= STUCK_RUNNING_SHARE * ctx.total_steps


def plateau(curves: Curves, ctx: RunContext) -> Finding | None:
    """No progress for a long stretch: stuck from the start, or stuck and later escaped."""
    p = curves.train
    if p is None:
        return None
    mask = p.usable
    if int(mask.sum()) < MIN_BINS:
        return None
    m = ctx.margin
    c, lo, hi = p.bins.center[mask], p.bins.lo[mask], p.bins.hi[mask]
    fit = p.iso(mask)
    span = float(c[-1] - c[0])
    drop = float(fit[0] - fit[-1])
    noise = p.noise_m(mask)
    eps = m * max(FLAT_NOISE * noise, FLAT_OF_DROP * drop)
    # For each start i, the last j with fit[i] - fit[j] <= eps (fit is non-increasing).
    ends = np.searchsorted(-fit, -fit + eps, side="right") - 1
    lengths = c[ends] - c
    i = int(np.argmax(lengths))
    j = int(ends[i])
    stuck = _no_progress(p.bins.med[mask], noise, m) and _long_enough(curves, ctx, span)
    after = float(fit[j] - fit[-1])
    escaped = (
        not stuck
        and j < fit.size - 1
        and lengths[i] >= m * FLAT_SPAN * span
        and after >= m * max(ESCAPE_NOISE * noise, ESCAPE_OF_DROP * drop)
    )
    if escaped:
        # A pooled rise-and-fall also fits flat; a plateau's bins really are level.
        q10, q90 = np.quantile(p.bins.med[mask][i : j + 1], [0.1, 0.9])
        escaped = bool(q90 - q10 <= 2 * eps)
    if escaped and curves.lr is not None:
        # A step decay (or ReduceLROnPlateau) ending the stretch is the schedule working.
        during = float(curves.lr.value_at(float(c[(i + j) // 2])))
        next_lr = float(curves.lr.value_at(float(hi[min(j + 2, fit.size - 1)])))
        if next_lr <= 0.5 * during:
            escaped = False
    if not (stuck or escaped):
        return None
    if stuck:
        i, j = 0, fit.size - 1
    r = p.raw
    level = r(float(np.median(fit[i : j + 1])))
    first, last = int(lo[i]), int(hi[j])
    share = (last - first) / span if span > 0 else 1.0
    evidence: dict[str, Value] = {
        "metric": "train_loss",
        "level": level,
        "from_step": first,
        "to_step": last,
        "share_of_run": share,
        "escaped": escaped,
    }
    factor = 3.0 if stuck else 2.0
    changes = _lr_up(ctx, curves, factor)
    alternatives: list[Alternative] = []
    if ctx.optimizer == "sgd" and not ctx.momentum:
        alternatives.append(
            Alternative(
                "Add momentum 0.9: it carries the weights across flat regions.",
                {"optimizer.momentum": 0.9},
            )
        )
    if ctx.optimizer in (None, "sgd"):
        alternatives.append(
            Alternative(
                "Switch to Adam, which rescales small gradients on flat regions.",
                {"optimizer.name": "adam", "optimizer.lr": 1e-3},
            )
        )
    if stuck:
        summary = (
            f"train_loss made no progress from step {first} to {last}: it stayed at "
            f"{fmt(level)} (trend {fmt(r(float(fit[0])))} -> {fmt(r(float(fit[-1])))}, "
            "within the noise of its batches)."
        )
        text = (
            f"Raise the lr {fmt(factor)}x: a loss that does not move at all usually means "
            "steps too small to leave the start. If grad_norm is near zero, look at the "
            "initialization instead; if the per-step loss is very noisy, lower it."
        )
        severity: Severity = "warning"
        ratio = 2.0
    else:
        evidence["drop_after"] = after
        summary = (
            f"train_loss stalled at {fmt(level)} from step {first} to {last} "
            f"({fmt(100 * share)}% of the run), then fell again to {fmt(r(float(fit[-1])))}."
        )
        text = (
            f"A {fmt(factor)}x higher lr (or momentum) crosses such flat stretches faster; "
            "the later drop shows the loss could improve from there."
        )
        severity = "warning" if share >= 0.4 else "info"
        ratio = min(share / (m * FLAT_SPAN), after / max(ESCAPE_OF_DROP * drop, 1e-300))
    return Finding(
        kind="plateau",
        severity=severity,
        confidence=confidence_from(ratio, running=ctx.running),
        step=first,
        summary=summary,
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )


def underfitting(curves: Curves, ctx: RunContext) -> Finding | None:
    """Train and val losses both flat, close together and still high."""
    p, v = curves.train_linear, curves.val_linear
    if p is None or v is None or not _budget_seen(curves, ctx):
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
    drop = max(p.start - float(np.min(p.bins.med[mask])), 0.0)
    noise = p.noise_m(mask)
    eps = m * max(FLAT_NOISE * noise, 0.05 * drop)
    train_tail = float(fit[tail][0] - fit[-1])
    k = max(2, int(mask.sum()) // 10)
    train_final = float(np.median(p.bins.med[mask][-k:]))
    vt = v.steps >= tail_from
    if int(vt.sum()) < 2:
        return None
    v_drop = max(v.start - float(np.min(v.smooth)), 0.0)
    v_eps = m * max(FLAT_NOISE * v.sigma, 0.05 * v_drop)
    v_tail = v.smooth[vt]
    val_final = float(np.median(v.y[-max(2, v.size // 10) :]))
    flat = train_tail <= eps and abs(float(v_tail[0] - v_tail[-1])) <= v_eps
    high = train_final >= min(1.0, HIGH_SHARE * m) * p.start
    close = val_final - train_final <= GAP_SHARE * train_final
    if not (flat and high and close):
        return None
    flat_from = int(np.flatnonzero(fit - fit[-1] <= eps)[0])
    step = int(p.bins.lo[mask][flat_from])
    changes = _lr_up(ctx, curves, 3.0)
    alternatives: list[Alternative] = [
        Alternative(
            "Or give the model more capacity.",
            {"task.hidden": tuple(2 * w for w in ctx.hidden)} if ctx.hidden else {},
        )
    ]
    if ctx.weight_decay or ctx.dropout:
        reg: dict[str, Value] = {}
        if ctx.weight_decay:
            reg[ctx.weight_decay_path] = 0.0
        if ctx.dropout:
            reg["regularization.dropout"] = 0.0
        alternatives.append(Alternative("Or drop the regularization that holds it back.", reg))
    if ctx.total_steps:
        alternatives.append(
            Alternative("Or train 2x longer.", {"budget.max_steps": 2 * ctx.total_steps})
        )
    return Finding(
        kind="underfitting",
        severity="warning",
        confidence=confidence_from(train_final / (HIGH_SHARE * p.start), running=ctx.running),
        step=step,
        summary=(
            f"train_loss went only from {fmt(p.start)} to {fmt(train_final)} and has been "
            f"flat since step {step}; val_loss is flat at {fmt(val_final)}, close to it: "
            "the model does not fit even the training data."
        ),
        evidence={
            "train_start": p.start,
            "train_final": train_final,
            "val_final": val_final,
            "share_remaining": train_final / p.start,
            "flat_since_step": step,
        },
        recommendation=(
            "Give the model more capacity (wider or deeper), train longer, or raise the lr "
            "3x: both curves stopped improving at a high loss, with no generalization gap "
            "to protect."
        ),
        changes=changes,
        alternatives=tuple(alternatives),
    )
