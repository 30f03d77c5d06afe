"""Objective checks that label a curve from evidence the analyzer does not get.

Each check compares a run with its references: the other rungs of its setup's lr ladder
(a lower lr for oscillation, a much higher one for slow convergence), a bigger model of
the same family (underfitting), its test split (overfitting) and its input- and
output-side layers' gradient norms (vanishing, exploding). Runs in the zone between a
condition and health are left out ("ambiguous"), never guessed; labels are never changed
after scoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PRIORITY", "Measured", "grad_growth", "label", "measure"]

# When several checks confirm a condition, the primary label is the first in this order:
# a condition earlier in it explains the later ones (a blow-up also stalls progress).
PRIORITY = (
    "divergence",
    "exploding_gradients",
    "vanishing_gradients",
    "oscillation",
    "overfitting",
    "underfitting",
    "slow_convergence",
)


def _med(v: np.ndarray) -> float:
    return float(np.median(v)) if v.size else math.nan


@dataclass(frozen=True)
class Measured:
    """What the checks need from one run."""

    finite: bool
    start: float  # median of the first three training losses
    end: float  # median of the last 10%
    third_start: float  # median around the start of the last third
    bounce: float  # median |diff(log loss)| over the last third
    grad_early: float
    grad_max_ratio: float  # max grad_norm after the first steps / early median
    grad_late_ratio: float  # late median / early median
    layer_ratio: float  # median(input-side norm / output-side norm)
    test_rise: float  # test loss: end / min
    test_min_at: float  # fraction of the run where the test loss was lowest
    train_fell_after: float  # train loss at the test minimum / train end

    @property
    def drop(self) -> float:
        return self.start - self.end if self.finite else -math.inf


def grad_growth(grad: np.ndarray, early: float) -> float:
    """The largest gradient norm after the first steps, over the early median. The first
    steps' gradient is often the largest of a run that then converges: exploding is growth
    over the early level (docs/analyzer.md), so it is judged after them."""
    skip = max(5, grad.size // 50)
    if grad.size <= skip or not early > 0:
        return math.nan
    return float(grad[skip:].max()) / early


def measure(series: dict, hidden: dict) -> Measured:
    loss = np.asarray(series["train_loss"][1], dtype=np.float64)
    finite = bool(np.all(np.isfinite(loss))) and loss.size > 10
    n = loss.size
    k10 = max(3, n // 10)
    start = _med(loss[:3])  # the loss before training moved it
    end = _med(loss[-k10:]) if finite else math.inf
    third = loss[2 * n // 3 :]
    third_start = _med(loss[2 * n // 3 : 2 * n // 3 + k10])
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.maximum(third, 1e-12))
        bounce = _med(np.abs(np.diff(logs))) if finite and third.size > 2 else math.inf
    grad = np.asarray(series.get("grad_norm", ([], []))[1], dtype=np.float64)
    grad = grad[np.isfinite(grad)]
    g_early = _med(grad[: max(3, grad.size // 10)]) if grad.size else math.nan
    g_max = grad_growth(grad, g_early)
    g_late = (
        _med(grad[-max(3, grad.size // 10) :]) / g_early if grad.size and g_early > 0 else math.nan
    )
    first = np.asarray(hidden["layer_first"][1]) if "layer_first" in hidden else np.array([])
    last = np.asarray(hidden["layer_last"][1]) if "layer_last" in hidden else np.array([])
    m = min(first.size, last.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = first[:m] / last[:m]
    ratios = ratios[np.isfinite(ratios)]
    test_steps = np.asarray(hidden["test_loss"][0]) if "test_loss" in hidden else np.array([])
    test = (
        np.asarray(hidden["test_loss"][1], dtype=np.float64)
        if "test_loss" in hidden
        else np.array([])
    )
    rise, at, fell = 1.0, 1.0, 1.0
    if test.size >= 5 and np.all(np.isfinite(test)):
        smooth = np.convolve(test, np.ones(3) / 3, mode="valid")
        i = int(np.argmin(smooth))
        rise = float(np.median(test[-3:]) / max(smooth[i], 1e-12))
        at = (i + 1) / smooth.size
        step = int(test_steps[i + 1])
        loss_steps = np.asarray(series["train_loss"][0])
        j = int(np.searchsorted(loss_steps, step))
        around = loss[max(0, j - k10 // 2) : j + k10 // 2 + 1]
        fell = _med(around) / max(end, 1e-12) if finite else 1.0
    return Measured(
        finite,
        start,
        end,
        third_start,
        bounce,
        g_early,
        g_max,
        g_late,
        _med(ratios) if ratios.size else math.nan,
        rise,
        at,
        fell,
    )


def _confirmed(
    m: Measured,
    lr: float,
    rungs: dict[float, Measured],
    bigger: Measured | None,
    fixed: Measured | None,
) -> list[str]:
    """Every condition the checks confirm for the run at `lr` (in PRIORITY order)."""
    found: list[str] = []
    lower = [r for q, r in rungs.items() if lr / 4 <= q < lr * 0.99]
    much_higher = [r for q, r in rungs.items() if q >= lr * 25 and r.finite]
    best = min((r.end for r in rungs.values() if r.finite), default=math.inf)
    if bigger is not None and bigger.finite:
        best = min(best, bigger.end)
    achievable = m.start - best  # the most any reference got down from this start
    if not m.finite or m.end > 1.5 * m.start:
        found.append("divergence")
    if m.finite and m.grad_max_ratio >= 100:
        found.append("exploding_gradients")
    if fixed is not None and fixed.finite:
        achievable = max(achievable, m.start - fixed.end)
    # Vanishing is the architecture's doing: the lower rungs lose the gradient too (a far
    # too high lr that kills every ReLU also leaves the first layer without gradient).
    lower_all = [r for q, r in rungs.items() if q < lr]
    architectural = all(r.layer_ratio < 1e-2 for r in lower_all)
    if m.finite and m.layer_ratio < 1e-3 and architectural and m.drop < 0.2 * achievable:
        found.append("vanishing_gradients")
    if m.finite and m.end <= 1.5 * m.start and lower:
        # A third of the lr settles far lower, while this run swings in place: no
        # progress over its last third, with step-to-step swings of 10% or more.
        ref = lower[0]
        settles = ref.finite and ref.end < 0.6 * m.end
        in_place = m.end >= 0.9 * m.third_start
        if settles and in_place and m.bounce >= 0.1:
            found.append("oscillation")
    if m.finite and m.test_rise >= 1.3 and m.test_min_at <= 0.8 and m.train_fell_after >= 1.1:
        found.append("overfitting")
    if m.finite and bigger is not None and bigger.finite:
        big_drop = m.start - bigger.end
        same_model_best = m.start - min(
            (r.end for r in rungs.values() if r.finite), default=m.start
        )
        flat = (m.third_start - m.end) < 0.05 * max(m.drop, 1e-12) + 0.02 * abs(m.start)
        if big_drop > 0 and m.drop < 0.6 * big_drop and same_model_best < 0.7 * big_drop and flat:
            found.append("underfitting")
    if m.finite and much_higher and achievable > 0:
        # Drops are measured from this run's own start: a rung that blew up in its first
        # steps has a start far above it, and would make any fall look small.
        ref_drop = m.start - min(r.end for r in much_higher)
        still_falling = m.third_start - m.end > 0.05 * max(m.drop, 1e-12)
        if m.drop < 0.5 * ref_drop and still_falling:
            found.append("slow_convergence")
    return [k for k in PRIORITY if k in found]


def _healthy(m: Measured, rungs: dict[float, Measured], bigger: Measured | None) -> bool:
    best = min((r.end for r in rungs.values() if r.finite), default=m.end)
    if bigger is not None and bigger.finite:
        best = min(best, bigger.end)
    return (
        m.finite
        and m.drop >= 0.7 * (m.start - best)
        and m.test_rise < 1.1
        and not m.grad_max_ratio >= 20
        and not m.layer_ratio < 1e-2
    )


def label(
    lr: float, rungs: dict[float, Measured], bigger: Measured | None, fixed: Measured | None = None
) -> tuple[str, list[str]]:
    """(primary label or "ambiguous", every condition confirmed) for the rung at `lr`.

    `bigger` is the best run of a larger model of the family (the capacity reference),
    `fixed` the best run of the same depth with a non-saturating activation and default
    init (the reference for what a trainable stack of that depth reaches)."""
    m = rungs[lr]
    found = _confirmed(m, lr, rungs, bigger, fixed)
    if found:
        return found[0], found
    return ("healthy" if _healthy(m, rungs, bigger) else "ambiguous"), []
