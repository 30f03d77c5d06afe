"""Exploding and vanishing gradients, from grad_norm (global L2 norm before clipping).

Norms are read in decades (log10): an explosion is a rise of an order of magnitude or
more above the lowest level the run had reached so far, and beyond the noise of those two
levels; a collapse is two orders below the early level while the loss does not move.
Ratios do not depend on the loss scale.

When the run logged per-layer norms (grad_norm/<index>.<module>), both are judged from
the first layer against the last instead (services.analyzer.rules_layers); a grad_norm
of exactly zero (dead units) and a non-finite one are read from grad_norm as before.
"""

from __future__ import annotations

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curve_series import Track
from services.analyzer.curves import Curves, GradCurve
from services.analyzer.findings import Alternative, Finding, Value, confidence_from
from services.analyzer.layers import rise_se
from services.analyzer.profile import design_mask, lr_raised
from services.analyzer.recommend import (
    LrAdvice,
    clip_threshold,
    fmt,
    lower_lr_advice,
    lr_changes,
    warmup_steps_for,
)
from services.analyzer.rules_layers import Explosion, layer_explosion, vanishing_by_layers
from services.analyzer.rules_progress import HIGH_SHARE
from services.analyzer.spec_text import change_text, changes_text
from services.analyzer.stats import median

__all__ = ["exploding_gradients", "vanishing_gradients"]

MIN_BINS = 10
SUSTAINED_DECADES = 1.0
GROWTH_SE = 3.0
PEAK_DECADES = 1.5
SPIKE_DECADES = 1.0
MIN_SPIKES = 5
SPIKE_RATE = 0.002
# Vanishing: grad_norm 1.5 decades (~30x) below its early level while train_loss has not
# moved from a high level, which corroborates it; 3 decades when there is no loss to ask.
COLLAPSE_DECADES = 1.5
COLLAPSE_ALONE_DECADES = 3.0
ZERO_SHARE = 0.5
SOLVED_SHARE = 0.01
STUCK_OF_DROP = 0.1


def global_explosion(
    curves: Curves, ctx: RunContext, spikes_count: bool = True
) -> Explosion | None:
    """grad_norm growth (sustained, or a peak) above the lowest level reached so far, or
    repeated spikes above it (`spikes_count`), or a non-finite grad_norm."""
    g = curves.grad
    if g is None:
        return None
    m = ctx.margin
    b = g.bins
    onset: int | None = None
    kind_text = ""
    ratio = 1.0
    evidence: dict[str, Value] = {"metric": "grad_norm"}
    if b.size >= MIN_BINS:
        # Height above the lowest level reached so far: the usual early fall is not growth.
        # Bins where the lr rose by design (cycles, restarts) are left out: larger steps
        # there are meant, and so are the larger gradients they bring.
        design = design_mask(curves.lr, b, ctx)
        excess = np.where(design, 0.0, b.med - np.minimum.accumulate(b.med))
        k = max(2, b.size // 10)
        late = float(median(excess[-k:]))
        peak_i = int(np.argmax(excess))
        peak = float(excess[peak_i])
        # Growth is a difference of two bin medians, the bin and the lowest one before
        # it: within 3 standard errors of that difference it is no growth, however many
        # decades it spans (once most batches are solved, their norms span decades and a
        # bin's median may land on either side).
        real = excess >= GROWTH_SE * rise_se(b)
        late_real = bool(np.mean(real[-k:]) >= 0.5)
        sustained = late >= m * SUSTAINED_DECADES and late_real
        peaked = peak >= m * PEAK_DECADES and bool(real[peak_i])
        groups = np.repeat(np.arange(b.size), b.count)
        logs = np.log10(g.track.values[g.track.values > 0])
        steps = g.track.steps[g.track.values > 0]
        floor = np.minimum.accumulate(b.med)[groups]
        # A spike also tops every level grad_norm held before: once a run converges its
        # median norm is tiny, and an ordinary hard batch is 10x that without exploding.
        ceiling = np.maximum.accumulate(b.med)[groups]
        hit = (logs - b.med[groups] >= SPIKE_DECADES) & (logs - floor >= SPIKE_DECADES)
        # A hard batch while a schedule holds the lr above where it lifted it from (a
        # one-cycle peak and its anneal, a warm restart) is the schedule's doing.
        raised = lr_raised(curves.lr, b, ctx)
        hit &= (logs > ceiling) & ~raised[groups]
        spike_onsets = np.flatnonzero(hit & ~np.concatenate(([False], hit[:-1])))
        spikes = int(spike_onsets.size)
        evidence.update({"growth_decades_last": late, "growth_decades_peak": peak})
        evidence["spikes"] = spikes
        if sustained or peaked:
            below = np.flatnonzero(excess[: peak_i + 1] < 0.3)
            onset_bin = int(below[-1]) + 1 if below.size else 0
            onset = int(b.lo[min(onset_bin, b.size - 1)])
            base = float(b.med[max(onset_bin - 1, 0)])
            kind_text = (
                f"grad_norm (median per bin) rose from ~{fmt(10**base)} before step {onset} to "
                f"{fmt(10 ** float(b.med[peak_i]))} around step {int(b.lo[peak_i])} "
                f"({fmt(10**peak)}x)"
            )
            if late >= SUSTAINED_DECADES and late_real:
                kind_text += f" and stays {fmt(10**late)}x up at the end"
            ratio = max(late / SUSTAINED_DECADES, peak / PEAK_DECADES) / m
        elif spikes_count and spikes >= m * max(MIN_SPIKES, SPIKE_RATE * logs.size):
            onset = int(steps[spike_onsets[0]])
            kind_text = (
                f"grad_norm spiked {spikes} times to 10x or more its local median, first at "
                f"step {onset}"
            )
            ratio = spikes / (m * max(MIN_SPIKES, SPIKE_RATE * logs.size))
    if g.nonfinite is not None:
        step, value = g.nonfinite
        evidence.update({"nonfinite_step": step, "nonfinite_value": value})
        note = f"grad_norm became {fmt(value)} at step {step}"
        kind_text = f"{kind_text}; {note}" if kind_text else note
        onset = step if onset is None else min(onset, step)
        ratio = 10.0
    if onset is None:
        return None
    return Explosion(onset, kind_text, ratio, evidence)


def exploding_gradients(curves: Curves, ctx: RunContext) -> Finding | None:
    g = curves.grad
    gap = curves.layers
    if gap is not None:  # per-layer norms: judged by them, spikes left out (see rules_layers)
        found = layer_explosion(gap, global_explosion(curves, ctx, spikes_count=False), ctx)
    else:
        found = global_explosion(curves, ctx)
    if found is None or g is None:
        return None
    onset, kind_text, ratio, evidence = found.onset, found.text, found.ratio, found.evidence

    clip = clip_threshold(g, onset)
    healthy = g.track.values[g.track.steps < onset]
    if healthy.size:
        evidence["healthy_median"] = float(median(healthy))
    evidence["onset_step"] = onset
    p = curves.train
    lower = None
    if p is not None and p.bins.size:
        advice_bin = int(np.searchsorted(p.bins.lo, onset, side="right")) - 1
        advice = lower_lr_advice(p, curves.lr, max(advice_bin, 0), ctx)
        lower = (advice, advice.changes(ctx))
    text, changes, alternatives = _exploding_advice(clip, lower, ctx)
    if gap is not None:
        # Grown toward the input: the layers themselves amplify the gradient.
        text += (
            " The gradient grows on its way to the input: initialize the weights at "
            "He/Xavier scale and add normalization (BatchNorm/LayerNorm)."
        )
    warmup = warmup_steps_for(onset, ctx, int(g.track.steps[-1]) if g.track.size else 0)
    if warmup is not None and warmup > ctx.warmup_steps:
        alternatives.append(
            Alternative(
                f"Set {change_text('schedule.warmup_steps', warmup, ctx)}: the weights settle "
                "before the full lr.",
                {"schedule.warmup_steps": warmup},
            )
        )
    return Finding(
        kind="exploding_gradients",
        severity="critical" if "nonfinite_step" in evidence or ratio >= 2 else "warning",
        confidence=confidence_from(ratio, running=ctx.running),
        step=onset,
        summary=kind_text + ".",
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )


def _exploding_advice(
    clip: float | None, lower: tuple[LrAdvice, dict[str, Value]] | None, ctx: RunContext
) -> tuple[str, dict[str, Value], list[Alternative]]:
    """Clipping first, sized on the healthy stretch (else a lower lr); a scaled-up init
    back to the default; normalization and careful initialization in any case."""
    changes: dict[str, Value] = {}
    alternatives: list[Alternative] = []
    parts: list[str] = []
    already = ctx.grad_clip_norm
    if clip is not None and (already is None or clip < already):
        changes["regularization.grad_clip_norm"] = clip
        parts.append(
            f"Set {change_text('regularization.grad_clip_norm', clip, ctx)}, the 95th "
            "percentile of grad_norm while it was still healthy: it caps the rare huge step "
            "and leaves ordinary ones alone."
        )
        if lower is not None and lower[1]:
            alternatives.append(Alternative(lower[0].text(ctx, lower[1]), lower[1]))
    elif lower is not None and lower[1]:
        changes.update(lower[1])
        why = "is already on" if already else "has no healthy stretch to size it"
        parts.append(f"Clipping {why}. {lower[0].text(ctx, lower[1])}")
    else:
        parts.append("Clip the gradient norm near its usual level.")
    if ctx.init_scale is not None and ctx.init_scale > 1:
        changes["task.init_scale"] = 1.0
        parts.append(
            f"Set {change_text('task.init_scale', 1.0, ctx)}: weights scaled up at init "
            "multiply the gradient layer by layer."
        )
    parts.append(
        "Normalization (batch or layer norm) and careful initialization keep the gradient "
        "from compounding through the layers."
    )
    return " ".join(parts), changes, alternatives


def _loss_stuck_after(curves: Curves, step: int) -> bool | None:
    """train_loss made no real progress after `step` and is still high (None: no loss)."""
    p = curves.train
    lin = curves.train_linear
    if p is None or lin is None or p.bins.size < 6:
        return None
    after = p.bins.lo >= step
    if int(after.sum()) < 3:
        return False
    drop = max(p.start - float(np.min(p.bins.med)), 0.0)
    med_after = p.bins.med[after]
    progress = float(med_after[0] - median(med_after[-max(2, med_after.size // 10) :]))
    stuck = progress <= max(4 * p.noise_m(), STUCK_OF_DROP * drop)
    if bool(np.all(lin.y > 0)):
        final = float(median(lin.bins.med[-max(2, lin.bins.size // 10) :]))
        high = final >= HIGH_SHARE * lin.start
    else:
        high = drop <= 6 * p.noise_m()
    return stuck and high


def _solved_where_zero(curves: Curves, grad: Track) -> bool:
    """train_loss is ~0 on the steps whose gradient is exactly 0: solved batches of a
    saturated, confident model, not dead units (which leave the loss high)."""
    p = curves.train
    if p is None or p.steps.size == 0:
        return False
    zero_steps = grad.steps[grad.values == 0]
    at = np.searchsorted(p.steps, zero_steps)
    hit = at < p.steps.size
    hit[hit] &= p.steps[at[hit]] == zero_steps[hit]
    if not bool(hit.any()):
        return False
    losses = p.raw_values(at[hit])
    start = abs(p.raw(p.start))
    return bool(median(np.abs(losses)) <= SOLVED_SHARE * start)


def vanishing_gradients(curves: Curves, ctx: RunContext) -> Finding | None:
    g = curves.grad
    if g is not None and g.zero_fraction_late >= ZERO_SHARE:
        dead = _dead_units(curves, ctx, g)
        if dead is not None:
            return dead
    if curves.layers is not None:
        return vanishing_by_layers(curves.layers, ctx)
    if g is None:
        return None
    return _collapse(curves, ctx, g)


def _dead_units(curves: Curves, ctx: RunContext, g: GradCurve) -> Finding | None:
    """grad_norm exactly 0 in most late steps, where the loss is not solved."""
    if _solved_where_zero(curves, g.track):
        return None
    zeros = np.flatnonzero(g.track.values == 0)
    step = int(g.track.steps[zeros[0]]) if zeros.size else None
    dead = lr_changes(ctx, 0.1, ctx.lr)
    lowered = changes_text(dead, ctx) if dead else "the lr about 10x"
    evidence: dict[str, Value] = {
        "metric": "grad_norm",
        "zero_share_last_quarter": g.zero_fraction_late,
    }
    return Finding(
        kind="vanishing_gradients",
        severity="critical",
        confidence=confidence_from(g.zero_fraction_late / ZERO_SHARE + 1, running=ctx.running),
        step=step,
        summary=(
            f"grad_norm is exactly 0 in {fmt(100 * g.zero_fraction_late)}% of the last "
            f"quarter of steps (first at step {step}): nothing is learning."
        ),
        evidence=evidence,
        recommendation=(
            "A gradient of exactly zero means dead units (ReLUs pushed below zero, often "
            f"by too high an lr) or a graph cut off from the loss: lower {lowered}, use "
            "careful initialization and a leaky activation, and check that every layer "
            "reaches the loss."
        ),
        changes=dead,
    )


def _collapse(curves: Curves, ctx: RunContext, g: GradCurve) -> Finding | None:
    """grad_norm fell orders of magnitude below its early level while the loss stalled."""
    m = ctx.margin
    b = g.bins
    evidence: dict[str, Value] = {"metric": "grad_norm"}
    if b.size < MIN_BINS:
        return None
    e = max(1, b.size // 5)
    early = float(median(b.med[:e]))
    late = float(median(b.med[-max(1, b.size // 10) :]))
    collapse = early - late
    if collapse < m * COLLAPSE_DECADES:
        return None
    low = b.med < early - 1.0
    suffix = np.flatnonzero(~low)
    onset_bin = int(suffix[-1]) + 1 if suffix.size else 0
    if onset_bin >= b.size:
        return None
    onset = int(b.lo[onset_bin])
    stuck = _loss_stuck_after(curves, onset)
    if stuck is False or (stuck is None and collapse < m * COLLAPSE_ALONE_DECADES):
        return None
    evidence.update(
        {"early_median": 10**early, "late_median": 10**late, "collapse_decades": collapse}
    )
    changes = _vanishing_changes(ctx)
    for_this = f" For this model: set {changes_text(changes, ctx)}." if changes else ""
    loss_note = "" if stuck is None else " while train_loss stopped improving"
    return Finding(
        kind="vanishing_gradients",
        severity="warning",
        confidence=confidence_from(collapse / (m * COLLAPSE_DECADES), running=ctx.running),
        step=onset,
        summary=(
            f"grad_norm (median per bin) fell from ~{fmt(10**early)} early on to "
            f"~{fmt(10**late)} by the end ({fmt(collapse)} decades, below a tenth of its "
            f"early level from step {onset}){loss_note}."
        ),
        evidence=evidence,
        recommendation=(
            "The gradient no longer reaches the early layers: use careful initialization "
            "(He/Xavier), add normalization (batch or layer norm) or residual connections, "
            f"and a non-saturating activation (ReLU/GELU) instead of sigmoid/tanh.{for_this}"
        ),
        changes=changes,
    )


def _vanishing_changes(ctx: RunContext) -> dict[str, Value]:
    """The remedies the spec can express: a non-saturating activation for a sigmoid/tanh
    stack, and the default init for one scaled down (a larger lr is no remedy: the
    gradient still fades layer by layer)."""
    changes: dict[str, Value] = {}
    if ctx.activation in ("sigmoid", "tanh"):
        changes["task.activation"] = "relu"
    if ctx.init_scale is not None and ctx.init_scale < 1:
        changes["task.init_scale"] = 1.0
    return changes
