"""Vanishing and exploding gradients judged layer by layer, when the run logged
`grad_norm/<index>.<module>` (services.analyzer.layers): the first (input-side) layer's
gradient norm against the last (output-side) one's, in decades (log10 of their ratio).

Why these thresholds:
- Balanced is near 0. With He/Xavier-scaled weights and non-saturating units, backprop
  keeps the gradient's scale from layer to layer, and the input side's weight gradient
  (its error signal times its input) is within a decade of the output side's; layer
  shapes move it by about half a decade (a layer with 8x the weights has ~3x the norm).
  Every built-in task (digits MLP and CNN, text LSTM and transformer, regression,
  cartpole), 300 steps under SGD and under Adam, measured between -1.3 and +0.3.
- Vanishing is a gap of 2 decades or more at the end (VANISH_DECADES): with one lr for
  every layer, the first layer then moves 100x slower than the last, so in the run's
  budget it barely trains; no shape effect comes near that. A deep sigmoid stack with
  small weights measures 5-9 decades. 4 decades or more is critical (SEVERE_DECADES):
  10,000x is below what Adam's epsilon and float32 rounding leave of an update.
- Exploding is the reverse growth: the gap rose by a decade or more above the lowest it
  had reached (REVERSE_DECADES, beyond 3 standard errors of the two bin medians, as for
  grad_norm's own growth) and ends with the input side a decade or more above the output
  side (INPUT_ABOVE_DECADES): the layers amplify the gradient on its way back. A rise of
  the global grad_norm counts only when the first layer's own norm rose as far from the
  same start (FIRST_GROWTH_DECADES): growth confined to the output side (logits growing
  on a solved task) is not a gradient that explodes through the network, and neither
  are single hard batches of a small batch size (spikes).
Thresholds are scaled by the context's margin while a run is live, as every rule's are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.findings import Finding, Value, confidence_from
from services.analyzer.layers import LayerGap, rise_se
from services.analyzer.recommend import fmt
from services.analyzer.stats import median

__all__ = ["Explosion", "layer_explosion", "vanishing_by_layers"]

VANISH_DECADES = 2.0
SEVERE_DECADES = 4.0
REVERSE_DECADES = 1.0
INPUT_ABOVE_DECADES = 1.0
FIRST_GROWTH_DECADES = 1.0
GROWTH_SE = 3.0
# A gap that moved this far from early on is worth naming as a trend.
TREND_DECADES = 0.5
# Where growth starts: the last bin that was within this of the lowest level before it.
ONSET_DECADES = 0.3


@dataclass(frozen=True)
class Explosion:
    """What an exploding-gradient detector saw: where it began, in words, how far past
    its threshold (>= 1), and the numbers behind it."""

    onset: int
    text: str
    ratio: float
    evidence: dict[str, Value]


def _gap_words(gap: LayerGap) -> str:
    return f"{gap.first} against {gap.last}"


def _trend_words(gap: LayerGap) -> str:
    if gap.trend <= -TREND_DECADES:
        return f", widening from {fmt(-gap.early)} decades early on"
    if gap.trend >= TREND_DECADES:
        return f", narrowing from {fmt(-gap.early)} decades early on"
    return ", as wide as early on"


def vanishing_by_layers(gap: LayerGap, ctx: RunContext) -> Finding | None:
    """The first layer's norm VANISH_DECADES or more below the last layer's at the end."""
    deficit = -gap.late
    if deficit < ctx.margin * VANISH_DECADES:
        return None
    b = gap.bins
    low = np.flatnonzero(b.med <= -VANISH_DECADES)
    step = int(b.lo[low[0]]) if low.size else int(b.lo[0])
    evidence: dict[str, Value] = {
        "metric": gap.first,
        "last_layer": gap.last,
        "layers": gap.layers,
        "layer_gap_decades_early": gap.early,
        "layer_gap_decades_last": gap.late,
        "layer_gap_trend_decades": gap.trend,
    }
    changes: dict[str, Value] = {}
    if ctx.activation in ("sigmoid", "tanh"):
        changes["task.activation"] = "relu"
    if ctx.init_scale is not None and ctx.init_scale < 1.0:
        changes["task.init_scale"] = 1.0
    return Finding(
        kind="vanishing_gradients",
        severity="critical" if deficit >= SEVERE_DECADES else "warning",
        confidence=confidence_from(deficit / (ctx.margin * VANISH_DECADES), running=ctx.running),
        step=step,
        summary=(
            f"The first layer's gradient norm is {fmt(10**deficit)}x below the last "
            f"layer's at the end ({fmt(deficit)} decades, {_gap_words(gap)}"
            f"{_trend_words(gap)}): the input-side layers barely learn."
        ),
        evidence=evidence,
        recommendation=(
            "The gradient fades on its way back to the input, and a higher lr would only "
            "push the output-side layers harder: initialize the weights at He/Xavier scale, "
            "add normalization (BatchNorm/LayerNorm) or residual connections, and use a "
            "non-saturating activation (ReLU/GELU) instead of sigmoid/tanh."
        ),
        changes=changes,
    )


def _reverse_growth(gap: LayerGap, ctx: RunContext) -> Explosion | None:
    b = gap.bins
    if b.size < 2:
        return None
    rise = b.med - np.minimum.accumulate(b.med)
    k = max(2, b.size // 10)
    late_rise = float(median(rise[-k:]))
    real = bool(np.mean(rise[-k:] >= GROWTH_SE * rise_se(b)[-k:]) >= 0.5)
    m = ctx.margin
    if not (late_rise >= m * REVERSE_DECADES and real and gap.late >= m * INPUT_ABOVE_DECADES):
        return None
    below = np.flatnonzero(rise < ONSET_DECADES)
    onset_bin = min(int(below[-1]) + 1 if below.size else 0, b.size - 1)
    onset = int(b.lo[onset_bin])
    text = (
        f"The first layer's gradient norm rose from {fmt(10 ** (gap.late - late_rise))}x to "
        f"{fmt(10**gap.late)}x the last layer's from step {onset} on ({_gap_words(gap)}): "
        "the gradient grows on its way back to the input"
    )
    ratio = min(late_rise / REVERSE_DECADES, gap.late / INPUT_ABOVE_DECADES) / m
    evidence: dict[str, Value] = {
        "metric": gap.first,
        "last_layer": gap.last,
        "layer_gap_decades_early": gap.early,
        "layer_gap_decades_last": gap.late,
        "layer_gap_rise_decades": late_rise,
    }
    return Explosion(onset, text, ratio, evidence)


def _first_layer_growth(gap: LayerGap, since: int) -> float:
    """How far the first layer's norm rose, in decades, from its lowest level before
    `since` to its level at the end."""
    f = gap.first_bins
    before = f.med[f.lo < since]
    start = float(np.min(before)) if before.size else float(f.med[0])
    return float(median(f.med[-max(2, f.size // 10) :])) - start


def layer_explosion(gap: LayerGap, growth: Explosion | None, ctx: RunContext) -> Explosion | None:
    """Exploding gradients with per-layer norms at hand: the gap's reverse growth, or the
    global `growth` (grad_norm's rise or non-finite value, spikes left out) where the
    first layer rose as well."""
    reverse = _reverse_growth(gap, ctx)
    if reverse is not None:
        return reverse
    if growth is None:
        return None
    if "nonfinite_step" in growth.evidence:
        return growth
    risen = _first_layer_growth(gap, growth.onset)
    if risen < ctx.margin * FIRST_GROWTH_DECADES:
        return None
    evidence = {**growth.evidence, "first_layer": gap.first, "first_layer_rise_decades": risen}
    text = f"{growth.text}, and {gap.first} rose {fmt(10**risen)}x with it"
    return Explosion(growth.onset, text, growth.ratio, evidence)
