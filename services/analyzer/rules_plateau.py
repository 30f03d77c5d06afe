"""Plateau: no progress for a long stretch. Three shapes, each with its own remedy:

- stuck: no progress over the whole run (the last third no lower than the first, within
  the standard error of their difference): steps too small to leave the start; not a
  loss that fell before the window opened (a warmup, a cyclic lr's first rise) and then
  held, which has converged;
- escaped: a long flat stretch, then a clear drop (a saddle the run crossed late): it
  is a plateau only when it is far flatter than the fall that ends it, so a slow steady
  descent with some noise is not read as one;
- starved: the lr fell below a hundredth of its peak (a step or exponential decay set
  too early) and the loss has not moved since, for a fair share of the run.

Shapes are judged on a monotone (isotonic) fit of the train_loss bin medians over the
window (after warmup, before SWA, outside by-design lr rises).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Severity, Value, confidence_from
from services.analyzer.profile import LossProfile
from services.analyzer.recommend import HEAVY_MOMENTUM, fmt, switch_to_adam
from services.analyzer.rules_progress import FLAT_NOISE, MIN_BINS, lr_up, lr_up_text
from services.analyzer.spec_text import change_text, changes_text
from services.analyzer.stats import MEDIAN_EFFICIENCY, FloatArray, median

__all__ = ["plateau"]

# Flat within FLAT_NOISE bin-median noises (or this share of the drop) for at least this
# share of the run, then a further drop of at least this share; the stretch falls at
# most a third as fast as the drop after it.
FLAT_OF_DROP = 0.03
FLAT_SPAN = 0.2
ESCAPE_OF_DROP = 0.2
ESCAPE_NOISE = 8.0
ESCAPE_CONTRAST = 3.0
# Stuck: the last third not below the first by 3 standard errors of their difference;
# a live run only after this share of its budget.
STUCK_SE = 3.0
STUCK_RUNNING_SHARE = 0.2
# Starved: the lr below this share of its peak so far, from there to the end, for at
# least this share of the run.
STARVED_LR = 0.01
STARVED_SHARE = 0.3
# A stretch over which val_loss fell by this share of its whole drop was not flat.
VAL_MOVED_OF_DROP = 0.25


@dataclass(frozen=True)
class _Stretch:
    mode: str  # "stuck", "escaped" or "starved"
    first: int  # steps
    last: int
    level: float  # raw units
    ratio: float  # how far past its threshold (>= 1)
    summary: str
    evidence: dict[str, Value] = field(default_factory=dict)


def _no_progress(med: FloatArray, noise_m: float, margin: float) -> bool:
    """The last third of the bins is not significantly below the first third.

    Compared third against third, not bin against bin: the difference of two medians of
    many bin medians is known far more precisely than one bin, so a slow but real descent
    is not mistaken for "stuck", and a noisy short curve is not called flat by default."""
    third = max(3, med.size // 3)
    if med.size < 2 * third:
        return False
    first, last = float(median(med[:third])), float(median(med[-third:]))
    se = MEDIAN_EFFICIENCY * noise_m * np.sqrt(2.0 / third)
    return bool(first - last <= margin * STUCK_SE * se)


def _long_enough(ctx: RunContext, span: float) -> bool:
    """A live run is called stuck only after a fair share of its budget."""
    if not ctx.running:
        return True
    return ctx.total_steps is not None and span >= STUCK_RUNNING_SHARE * ctx.total_steps


def _stuck(p: LossProfile, ctx: RunContext) -> _Stretch | None:
    mask = p.usable
    c, fit = p.bins.center[mask], p.iso(mask)
    span = float(c[-1] - c[0])
    if not (
        _no_progress(p.bins.med[mask], p.noise_m(mask), ctx.margin) and _long_enough(ctx, span)
    ):
        return None
    # Stuck means the run never left its start. A window that opens late (after a warmup,
    # or after the lr rises of a cyclic schedule) may follow a fall the run already made:
    # a loss that then holds has converged, it is not stuck. Start and stretch are each a
    # median, so the fall is judged against the standard error of their difference.
    if not mask[0]:
        start, start_se = p.settled_start()
        held = p.bins.med[mask]
        se = float(np.hypot(start_se, MEDIAN_EFFICIENCY * p.noise_m(mask) / np.sqrt(held.size)))
        if start - float(median(held)) > ctx.margin * STUCK_SE * se:
            return None
    first, last = int(p.bins.lo[mask][0]), int(p.bins.hi[mask][-1])
    level = p.raw(float(median(fit)))
    summary = (
        f"train_loss made no progress from step {first} to {last}: it stayed at "
        f"{fmt(level)} (smoothed; trend {fmt(p.raw(float(fit[0])))} -> "
        f"{fmt(p.raw(float(fit[-1])))}, within the noise of its batches)."
    )
    return _Stretch("stuck", first, last, level, 2.0, summary)


def _escaped(p: LossProfile, curves: Curves, ctx: RunContext) -> _Stretch | None:
    mask, m = p.usable, ctx.margin
    c, hi = p.bins.center[mask], p.bins.hi[mask]
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
    after = float(fit[j] - fit[-1])
    if j >= fit.size - 1 or lengths[i] < m * FLAT_SPAN * span:
        return None
    if after < m * max(ESCAPE_NOISE * noise, ESCAPE_OF_DROP * drop):
        return None
    # Far flatter than the fall that ends it: a steady slow descent is not a plateau.
    rate_in = float(fit[i] - fit[j]) / max(float(lengths[i]), 1.0)
    rate_after = after / max(float(c[-1] - c[j]), 1.0)
    if rate_after < ESCAPE_CONTRAST * rate_in:
        return None
    # A pooled rise-and-fall also fits flat; a plateau's bins really are level.
    q10, q90 = np.quantile(p.bins.med[mask][i : j + 1], [0.1, 0.9])
    if q90 - q10 > 2 * eps:
        return None
    if curves.lr is not None:
        # A step decay (or ReduceLROnPlateau) ending the stretch is the schedule working.
        during = float(curves.lr.value_at(float(c[(i + j) // 2])))
        next_lr = float(curves.lr.value_at(float(hi[min(j + 2, fit.size - 1)])))
        if next_lr <= 0.5 * during:
            return None
    first, last = int(p.bins.lo[mask][i]), int(hi[j])
    share = (last - first) / span if span > 0 else 1.0
    level = p.raw(float(median(fit[i : j + 1])))
    summary = (
        f"train_loss (smoothed) stalled at {fmt(level)} from step {first} to {last} "
        f"({fmt(100 * share)}% of the run), then fell again to {fmt(p.raw(float(fit[-1])))}."
    )
    ratio = min(share / (m * FLAT_SPAN), after / max(ESCAPE_OF_DROP * drop, 1e-300))
    return _Stretch("escaped", first, last, level, ratio, summary, {"drop_after": after})


def _starved(p: LossProfile, curves: Curves, ctx: RunContext) -> _Stretch | None:
    lr = curves.lr
    if lr is None or lr.size < 2:
        return None
    values = np.where(np.isfinite(lr.values), lr.values, 0.0)
    peak = np.maximum.accumulate(values)
    low = values <= STARVED_LR * peak
    if not bool(low[-1]):
        return None
    highs = np.flatnonzero(~low)
    if highs.size == 0:
        return None
    k = int(highs[-1]) + 1  # the start of the final run of near-zero lr
    cut, first_step, last_step = int(lr.steps[k]), int(p.steps[0]), int(p.steps[-1])
    if last_step - cut < STARVED_SHARE * (last_step - first_step):
        return None
    after = p.bins.lo >= cut
    if int(after.sum()) < 3:
        return None
    med = p.bins.med[after]
    drop = max(p.start - float(np.min(p.bins.med)), 0.0)
    eps = ctx.margin * max(FLAT_NOISE * p.noise_m(after), FLAT_OF_DROP * drop)
    moved = float(median(med[: max(1, med.size // 3)]) - median(med[-max(1, med.size // 3) :]))
    if moved > eps:
        return None
    level = p.raw(float(median(med)))
    was, now = float(peak[k]), float(values[k])
    share = (last_step - cut) / max(last_step - first_step, 1)
    summary = (
        f"train_loss (smoothed) stopped at {fmt(level)} from step {cut} to {last_step} "
        f"({fmt(100 * share)}% of the run): the lr fell to {fmt(now)} there, "
        f"{fmt(was / now) if now > 0 else 'inf'}x below its peak {fmt(was)}, and stayed there."
    )
    evidence: dict[str, Value] = {"lr_at_cut": now, "lr_peak": was}
    return _Stretch("starved", cut, last_step, level, share / STARVED_SHARE, summary, evidence)


def _val_moved(curves: Curves, first: int, last: int) -> bool:
    """val_loss fell clearly over the stretch: the run was not stuck, whatever train_loss
    says (a policy-gradient surrogate, or a batch loss too noisy to show the progress)."""
    v = curves.val
    if v is None or v.size < 5:
        return False
    inside = (v.steps >= first) & (v.steps <= last)
    if int(inside.sum()) < 3:
        return False
    smooth = v.smooth[inside]
    fell = float(smooth[0] - smooth[-1])
    total = max(v.start - float(np.min(v.smooth)), 0.0)
    return fell > max(FLAT_NOISE * v.sigma, VAL_MOVED_OF_DROP * total)


def plateau(curves: Curves, ctx: RunContext) -> Finding | None:
    """No progress for a long stretch: starved of lr, stuck from the start, or escaped."""
    p = curves.train
    if p is None or int(p.usable.sum()) < MIN_BINS:
        return None
    stretch = _starved(p, curves, ctx) or _stuck(p, ctx) or _escaped(p, curves, ctx)
    if stretch is None or _val_moved(curves, stretch.first, stretch.last):
        return None
    first_step, last_step = int(p.steps[0]), int(p.steps[-1])
    span = max(last_step - first_step, 1)
    evidence: dict[str, Value] = {
        "metric": "train_loss",
        "level_smoothed": stretch.level,
        "from_step": stretch.first,
        "to_step": stretch.last,
        "share_of_run": (stretch.last - stretch.first) / span,
        "escaped": stretch.mode == "escaped",
        "lr_starved": stretch.mode == "starved",
        **stretch.evidence,
    }
    severity: Severity = "warning"
    if stretch.mode == "escaped" and (stretch.last - stretch.first) / span < 0.4:
        severity = "info"
    text, changes, alternatives = _advice(stretch, curves, ctx)
    return Finding(
        kind="plateau",
        severity=severity,
        confidence=confidence_from(stretch.ratio, running=ctx.running),
        step=stretch.first,
        summary=stretch.summary,
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )


def _advice(
    stretch: _Stretch, curves: Curves, ctx: RunContext
) -> tuple[str, dict[str, Value], list[Alternative]]:
    if stretch.mode == "starved":
        # The schedule, not the base lr, stopped the run: keep the lr up for longer.
        stop: dict[str, Value] = {"budget.max_steps": stretch.first + 1}
        text = (
            f"The lr schedule cut the lr to near zero at step {stretch.first} and training "
            "stopped there: decay later or by less (a larger step_size or gamma, a higher "
            f"eta_min / min_lr), or set {changes_text(stop, ctx)} to end the run there."
        )
        return text, stop, []
    factor = 3.0 if stretch.mode == "stuck" else 2.0
    changes = lr_up(ctx, curves, factor)
    raise_lr = lr_up_text(ctx, curves, changes, factor)
    alternatives: list[Alternative] = []
    if ctx.optimizer == "sgd" and ctx.momentum is not None and ctx.momentum < HEAVY_MOMENTUM:
        momentum: dict[str, Value] = {"optimizer.momentum": HEAVY_MOMENTUM}
        alternatives.append(
            Alternative(
                f"Set {change_text('optimizer.momentum', HEAVY_MOMENTUM, ctx)}: it carries "
                "the weights across flat regions.",
                momentum,
            )
        )
    if ctx.optimizer in (None, "sgd"):
        alternatives.append(switch_to_adam(ctx, "Adam rescales small gradients on flat regions"))
    if stretch.mode == "stuck":
        text = (
            f"Raise {raise_lr}: a loss that does not move at all usually means steps too "
            "small to leave the start. If grad_norm is near zero, look at the "
            "initialization instead."
        )
    else:
        text = (
            f"Raise {raise_lr}: a higher lr (or momentum) crosses such flat stretches "
            "faster; the later drop shows the loss could improve from there."
        )
    return text, changes, alternatives
