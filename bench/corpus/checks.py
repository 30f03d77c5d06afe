"""Sanity checks that a recipe made the condition it was written to cause.

Labels come from the recipe; these checks only catch a seed on which the recipe missed
(an "lr just under divergence" run that diverged after all, a "healthy" run that never
learned). They are crude statements of each condition's definition over raw medians,
written without the analyzer's code and never tuned against it. A curve that fails its
check stays in the corpus with made=False and is left out of the scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["check"]

Series = dict[str, tuple[list[int], list[float]]]
Check = Callable[[Series], tuple[bool, str]]


def _values(series: Series, name: str) -> np.ndarray:
    return np.asarray(series.get(name, ([], []))[1], dtype=np.float64)


def _median(values: np.ndarray, lo: float, hi: float) -> float:
    """Median of the finite values between shares lo and hi of the points (at least 3)."""
    n = values.size
    a = min(int(lo * n), max(n - 3, 0))
    b = max(math.ceil(hi * n), a + 3)
    part = values[a:b]
    part = part[np.isfinite(part)]
    return float(np.median(part)) if part.size else math.nan


def _first_bad(steps: Sequence[int], values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(steps[bad[0]]) if bad.size else None


def _divergence(s: Series) -> tuple[bool, str]:
    train = _values(s, "train_loss")
    bad = _first_bad(s["train_loss"][0], train)
    if bad is not None:
        return True, f"train_loss non-finite at step {bad}"
    start, late = _median(train, 0, 0.02), _median(train, 0.9, 1)
    return late > start, f"train_loss start {start:.3g}, end {late:.3g} (must end above start)"


def _finite(s: Series) -> tuple[bool, str]:
    train = _values(s, "train_loss")
    bad = _first_bad(s["train_loss"][0], train)
    if bad is not None:
        return False, f"train_loss non-finite at step {bad}: diverged instead"
    return True, "finite"


def _oscillation(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    train = _values(s, "train_loss")
    start, late = _median(train, 0, 0.02), _median(train, 0.9, 1)
    return late <= start, f"train_loss start {start:.3g}, end {late:.3g} (must not end above)"


def _slow(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    val = _values(s, "val_loss")
    late, before = _median(val, 0.9, 1), float(np.min(val[: max(1, 3 * val.size // 4)]))
    return late < before, f"val_loss end {late:.3g} vs best of the first 3/4 {before:.3g}"


def _overfitting(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    val, train = _values(s, "val_loss"), _values(s, "train_loss")
    i = int(np.argmin(val))
    late = _median(val, 0.9, 1)
    share = (i + 1) / val.size
    val_min = float(val[i])
    t_at = _median(train, max(0.0, share - 0.05), share)
    t_late = _median(train, 0.9, 1)
    made = share <= 0.8 and late >= 1.05 * val_min and t_late < t_at
    return made, (
        f"val_loss min {val_min:.3g} at {100 * share:.0f}% of evals, end {late:.3g}; "
        f"train_loss {t_at:.3g} -> {t_late:.3g}"
    )


def _underfitting(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    val = _values(s, "val_loss")
    first, late = float(val[0]), _median(val, 0.9, 1)
    return late >= 0.4 * first, f"val_loss {first:.3g} -> {late:.3g} (must keep >= 40%)"


def _exploding(s: Series) -> tuple[bool, str]:
    """Very large gradients, not one hard batch: grad_norm goes non-finite, or holds 10x
    its early level over a twentieth of the run, or spikes to 10x its local level at
    least 5 separate times (a single 10x step is an ordinary hard batch)."""
    grad = _values(s, "grad_norm")
    if grad.size == 0:
        return False, "no grad_norm"
    steps = s["grad_norm"][0]
    bad = _first_bad(steps, grad)
    if bad is not None:
        return True, f"grad_norm non-finite at step {bad}"
    early = _median(grad, 0, 0.1)
    width = min(max(5, grad.size // 20) | 1, grad.size - 1 + grad.size % 2)  # odd, <= size
    local = np.median(np.lib.stride_tricks.sliding_window_view(grad, width), axis=1)
    held = float(np.max(local)) / early if early > 0 else math.inf
    half = width // 2
    local = np.concatenate((np.full(half, local[0]), local, np.full(half, local[-1])))
    high = grad >= 10 * local[: grad.size]
    spikes = int(np.sum(high & ~np.concatenate(([False], high[:-1]))))
    return held >= 10 or spikes >= 5, (
        f"grad_norm early {early:.3g}, held {held:.3g}x over {width} steps, "
        f"{spikes} spikes of 10x its local level (must hold 10x or spike 5 times)"
    )


def _vanishing(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    grad, train = _values(s, "grad_norm"), _values(s, "train_loss")
    early, late = _median(grad, 0, 0.1), _median(grad, 0.75, 1)
    start, end = _median(train, 0, 0.02), _median(train, 0.9, 1)
    made = late <= 0.1 * early and end >= 0.5 * start
    return made, f"grad_norm {early:.3g} -> {late:.3g}; train_loss {start:.3g} -> {end:.3g}"


def _healthy(s: Series) -> tuple[bool, str]:
    ok, why = _finite(s)
    if not ok:
        return ok, why
    val = _values(s, "val_loss")
    first, best, late = float(val[0]), float(np.min(val)), _median(val, 0.9, 1)
    made = late <= 0.6 * first and late <= best + 0.15 * (first - best)
    return made, f"val_loss {first:.3g} -> best {best:.3g}, end {late:.3g}"


CHECKS: dict[str, Check] = {
    "divergence": _divergence,
    "oscillation": _oscillation,
    "slow_convergence": _slow,
    "plateau": _finite,
    "overfitting": _overfitting,
    "underfitting": _underfitting,
    "exploding_gradients": _exploding,
    "vanishing_gradients": _vanishing,
    "healthy": _healthy,
}


def check(kind: str, series: Series) -> tuple[bool, str]:
    return CHECKS[kind](series)
