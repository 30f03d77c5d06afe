"""Reading an LR range test: suggested lrs, with the reasoning, from a loss-vs-lr curve.

The curve comes from an exponential lr ramp, so lrs rise and are evenly spaced in log lr.
Raw losses are noisy (one batch each): they are smoothed by an exponential moving average
whose start is bias-corrected (avg_t / (1 - beta^t), as Adam corrects its moments), and
the curve is cut where the smoothed loss blows up (above `blowup` times its best so far,
or not finite). Three suggestions are read from what is left before that point:

- steepest: where the smoothed loss falls fastest per decade of lr;
- minimum: a tenth of the lr at the smoothed loss's minimum (the minimum itself is at the
  edge of instability: the loss is about to rise);
- valley: the middle of the longest descending stretch that ends by the minimum.

The recommended lr is the valley's (else the steepest's, else minimum/10), and the bounds
of a follow-up log-uniform sweep run from a third of the smallest suggestion up to a third
of the lr at the minimum. A curve that never blew up (max_lr too low) or that rose from its first
points (min_lr too high) gets a verdict saying so. No I/O here: callers pass the series.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from services.analyzer.sweep_lr import lr_text
from services.specs.range_test import DEFAULT_LOSS_ABOVE_BEST, DEFAULT_SMOOTHING

__all__ = [
    "Bounds",
    "Method",
    "SmoothedLoss",
    "Suggestion",
    "Suggestions",
    "Verdict",
    "blowup_index",
    "smooth",
    "suggest_lrs",
]

# Fewer points than this (after the cut) say nothing yet.
MIN_POINTS = 8
# A smoothed loss that falls less than this fraction of its start has not descended.
MIN_DROP = 0.02
# A step belongs to a descending stretch when its slope is at least this fraction of the
# steepest slope; a plateau (slope ~ 0) does not, however long.
DESCENT_FRACTION = 0.1
# Inside a stretch, this many slower (but still falling) steps in a row are tolerated.
STRETCH_GAP = 2
# A minimum within this last fraction of the curve means the loss was still falling.
END_FRACTION = 0.1

Method = Literal["steepest", "minimum", "valley"]
Verdict = Literal["ok", "never_blew_up", "blew_up_at_once", "no_descent", "too_few_points"]


class SmoothedLoss:
    """A bias-corrected EMA of a loss, and the best (lowest) value it has taken."""

    def __init__(self, beta: float) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f"smoothing must be in [0, 1) (got {beta})")
        self.beta = beta
        self.count = 0
        self.value = math.nan
        self.best = math.inf
        self._avg = 0.0

    def add(self, loss: float) -> float:
        self.count += 1
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        self.value = self._avg / (1 - self.beta**self.count)
        if self.value < self.best:
            self.best = self.value
        return self.value

    def blew_up(self, factor: float) -> bool:
        """Not finite, or above factor x the best so far (judged while the best is > 0:
        a ratio means nothing for a loss that can be negative)."""
        if not math.isfinite(self.value):
            return True
        return self.best > 0 and self.value > factor * self.best


def smooth(losses: Sequence[float], beta: float) -> list[float]:
    ema = SmoothedLoss(beta)
    return [ema.add(v) for v in losses]


def blowup_index(smoothed: Sequence[float], factor: float) -> int | None:
    """The first index whose smoothed loss blew up (see SmoothedLoss.blew_up)."""
    best = math.inf
    for i, value in enumerate(smoothed):
        if not math.isfinite(value) or (best > 0 and value > factor * best):
            return i
        best = min(best, value)
    return None


@dataclass(frozen=True)
class Suggestion:
    method: Method
    lr: float
    reasoning: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Bounds:
    """Log-uniform bounds for a follow-up sweep of the lr."""

    low: float
    high: float
    reasoning: str

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": "log_uniform", **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Suggestions:
    verdict: Verdict
    summary: str  # the reading in words, with its numbers
    suggestions: tuple[Suggestion, ...] = ()
    recommended: Suggestion | None = None
    bounds: Bounds | None = None
    smoothed: tuple[float, ...] = ()  # one per input point (NaN where the input was)
    blowup_index: int | None = None  # where the curve was cut
    min_index: int | None = None  # the smoothed minimum, before the cut
    notes: tuple[str, ...] = field(default_factory=tuple)

    def get(self, method: Method) -> Suggestion | None:
        return next((s for s in self.suggestions if s.method == method), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "suggestions": [s.to_dict() for s in self.suggestions],
            "recommended": None if self.recommended is None else self.recommended.to_dict(),
            "bounds": None if self.bounds is None else self.bounds.to_dict(),
            "notes": list(self.notes),
        }


def _slopes(log_lrs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """d value / d log10 lr at each point: central differences inside, one-sided at ends."""
    out = np.zeros_like(values)
    if values.size < 2:
        return out
    out[1:-1] = (values[2:] - values[:-2]) / (log_lrs[2:] - log_lrs[:-2])
    out[0] = (values[1] - values[0]) / (log_lrs[1] - log_lrs[0])
    out[-1] = (values[-1] - values[-2]) / (log_lrs[-1] - log_lrs[-2])
    return out


def _longest_stretch(slopes: np.ndarray, steepest: float, end: int) -> tuple[int, int] | None:
    """The longest run of descending points in [0, end]: each falls at least
    DESCENT_FRACTION as fast as the steepest, with up to STRETCH_GAP slower (but falling)
    points in a row inside. Ties go to the earlier run."""
    fast = slopes <= DESCENT_FRACTION * steepest
    runs: list[tuple[int, int]] = []
    start = last = -1
    for i in range(end + 1):
        if fast[i]:
            start, last = (i if start < 0 else start), i
        elif start >= 0 and slopes[i] < 0 and i - last <= STRETCH_GAP:
            continue
        elif start >= 0:
            runs.append((start, last))
            start = last = -1
    if start >= 0:
        runs.append((start, last))
    return max(runs, key=lambda r: r[1] - r[0], default=None)


def _clean(lrs: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points in lr order with a positive finite lr (the ramp's own; others are dropped)."""
    if len(lrs) != len(losses):
        raise ValueError(f"lrs and losses differ in length ({len(lrs)} vs {len(losses)})")
    lr = np.asarray(lrs, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    keep = np.isfinite(lr) & (lr > 0)
    lr, loss = lr[keep], loss[keep]
    if lr.size > 1 and np.any(np.diff(lr) <= 0):
        raise ValueError("lrs must increase (an exponential ramp)")
    return lr, loss


def suggest_lrs(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    smoothing: float = DEFAULT_SMOOTHING,
    blowup: float = DEFAULT_LOSS_ABOVE_BEST,
    finished: bool = True,
) -> Suggestions:
    """Suggested lrs from a range test's (lr, loss) points, in step order.

    `finished` False reads a test still running: a minimum at the end then only means
    the ramp has not got further yet, so the never-blew-up verdict is not given."""
    lr, loss = _clean(lrs, losses)
    smoothed = np.asarray(smooth(loss.tolist(), smoothing), dtype=np.float64)
    cut = blowup_index(smoothed.tolist(), blowup)
    usable = smoothed.size if cut is None else cut
    base = Suggestions(verdict="too_few_points", summary="", smoothed=tuple(smoothed.tolist()))
    if usable < MIN_POINTS:
        if cut is not None:  # blew up before the curve said anything
            return _blew_up_at_once(base, lr, cut)
        summary = (
            f"{usable} usable points so far; the reading needs at least {MIN_POINTS} "
            "(a longer test, or wait for this one)"
        )
        return _replace(base, verdict="too_few_points", summary=summary, blowup_index=cut)
    all_lrs = lr
    lr, s = lr[:usable], smoothed[:usable]
    log_lrs = np.log10(lr)
    m = int(np.argmin(s))
    start, low = float(s[0]), float(s[m])
    drop = start - low
    if drop <= MIN_DROP * abs(start) or m == 0:
        if cut is not None:
            return _blew_up_at_once(base, all_lrs, cut)
        summary = (
            f"the smoothed loss never fell by {MIN_DROP:.0%} (from {start:.4g} to at best "
            f"{low:.4g}) between lr {lr_text(lr[0])} and {lr_text(lr[-1])}, nor blew up: "
            "the whole range is too small to train; raise max_lr (and check that the task "
            "learns at all)"
        )
        return _replace(base, verdict="no_descent", summary=summary, min_index=m)
    slopes = _slopes(log_lrs, s)
    skip = min(max(1, usable // 20), m)  # the first few averages rest on few points
    window = slopes[skip : m + 1]
    steep_i = skip + int(np.argmin(window))
    steepest = float(slopes[steep_i])
    found: list[Suggestion] = []
    if steepest < 0:
        found.append(
            Suggestion(
                "steepest",
                float(lr[steep_i]),
                f"the smoothed loss falls fastest at lr {lr_text(lr[steep_i])}: "
                f"{steepest:.3g} per decade of lr (loss {s[steep_i]:.4g} there)",
            )
        )
    found.append(
        Suggestion(
            "minimum",
            float(lr[m]) / 10,
            f"the smoothed loss is lowest ({low:.4g}) at lr {lr_text(lr[m])}, where it is "
            f"about to rise; a tenth of that, {lr_text(lr[m] / 10)}, leaves a margin",
        )
    )
    stretch = _longest_stretch(slopes, steepest, m) if steepest < 0 else None
    if stretch is not None:
        a, b = stretch
        mid = float(10 ** ((log_lrs[a] + log_lrs[b]) / 2))
        found.append(
            Suggestion(
                "valley",
                mid,
                f"the longest descending stretch runs from lr {lr_text(lr[a])} to "
                f"{lr_text(lr[b])} ({b - a + 1} of {usable} points, loss {s[a]:.4g} -> "
                f"{s[b]:.4g}); its middle (in log lr) is {lr_text(mid)}",
            )
        )
    found.sort(key=lambda x: ("valley", "steepest", "minimum").index(x.method))
    recommended = found[0]
    near_end = m >= usable - max(1, int(END_FRACTION * usable))
    never = cut is None and near_end and finished
    high = float(lr[-1]) if never else float(lr[m]) / 3
    low_lr = min(x.lr for x in found) / 3
    if high <= low_lr:
        high = low_lr * 10
    upper = (
        f"max_lr ({lr_text(high)}), since the loss never turned"
        if never
        else f"a third of the lr at the loss's minimum ({lr_text(high)}); at the minimum "
        "itself a longer run soon diverges"
    )
    bounds = Bounds(
        low_lr, high, f"from a third of the smallest suggestion ({lr_text(low_lr)}) to {upper}"
    )
    notes = []
    if cut is not None:
        notes.append(
            f"the smoothed loss blew up at lr {lr_text(float(all_lrs[cut]))} "
            f"({smoothed[cut]:.4g} > {blowup:g} x best {low:.4g}); the curve is read up to there"
        )
    verdict: Verdict = "ok"
    if never:
        verdict = "never_blew_up"
        notes.append(
            f"the loss was still falling at max_lr ({lr_text(lr[-1])}) and never blew up: "
            "the lr where training breaks down lies above max_lr, so these suggestions are "
            "lower bounds; raise max_lr (say 10x) to see the whole curve"
        )
    summary = (
        f"recommended lr {lr_text(recommended.lr)} ({recommended.method}): "
        f"{recommended.reasoning}. " + " ".join(f"{n[0].upper()}{n[1:]}." for n in notes)
    ).strip()
    return Suggestions(
        verdict=verdict,
        summary=summary,
        suggestions=tuple(found),
        recommended=recommended,
        bounds=bounds,
        smoothed=tuple(smoothed.tolist()),
        blowup_index=cut,
        min_index=m,
        notes=tuple(notes),
    )


def _blew_up_at_once(base: Suggestions, lr: np.ndarray, cut: int) -> Suggestions:
    """`lr`: every point's lr, `cut`: where the smoothed loss blew up."""
    first, at = lr_text(float(lr[0])), lr_text(float(lr[cut]))
    summary = (
        f"the loss rose from the first lrs and blew up at lr {at} (step {cut}) without "
        f"falling first: min_lr ({first}) is already too large; lower it (say 100x) and "
        "run the test again"
    )
    return _replace(base, verdict="blew_up_at_once", summary=summary, blowup_index=cut)


def _replace(base: Suggestions, **changes: Any) -> Suggestions:
    return dataclasses.replace(base, **changes)
