"""Curve features: a fixed vector of scale-free numbers that describe a run's shape.

The kind classifier (services/analyzer/classifier.py) decides from these; they are ratios,
decades and shares, so that a loss of 2.3 (cross-entropy over ten classes) and one of
0.004 (a regression MSE) of the same shape give the same numbers. A series that was not
logged gives MISSING for its features plus a 0 in its `has_*` flag: the trees then learn
what can be said without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from services.analyzer.context import CYCLICAL_SCHEDULES, RunContext
from services.analyzer.curve_series import Track
from services.analyzer.findings import KINDS
from services.analyzer.stats import FloatArray, median

__all__ = ["FEATURES", "MISSING", "RULE_KINDS", "curve_features"]

# The rules' verdicts are features too: each rule encodes the primer's test for its kind,
# and the trees learn where each rule is to be trusted.
RULE_KINDS = tuple(k for k in KINDS if k not in ("healthy", "insufficient_data"))

# A value no real feature takes: "not logged" (the trees split it off on its own).
MISSING = -99.0
SEGMENTS = 20
ADAPTIVE = frozenset(
    {"adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam"}
)


def _clip(x: float, lo: float = -30.0, hi: float = 30.0) -> float:
    if not math.isfinite(x):
        return hi if x > 0 else lo
    return min(max(x, lo), hi)


def _log_ratio(a: float, b: float) -> float:
    """ln(a / b) for positive levels; a signed surrogate loss gets the difference in units
    of |b| instead (it may cross zero)."""
    if a > 0 and b > 0:
        return _clip(math.log(a / b))
    return _clip((a - b) / (abs(b) + 1e-12))


def _segments(values: FloatArray, n: int = SEGMENTS) -> FloatArray:
    """Medians of `n` equal-count stretches (fewer for short series)."""
    k = min(n, values.size)
    return np.array([median(part) for part in np.array_split(values, k)], dtype=np.float64)


def _block_medians(values: FloatArray, width: int) -> FloatArray:
    """Each point's local level: the median of its block of `width` consecutive points
    (one partition over the whole series; a sliding window costs ~20x more)."""
    blocks = -(-values.size // width)
    padded = np.pad(values, (0, blocks * width - values.size), mode="edge")
    levels = np.median(padded.reshape(blocks, width), axis=1)
    return np.asarray(np.repeat(levels, width)[: values.size], dtype=np.float64)


def _bounce(values: FloatArray) -> tuple[float, float]:
    """(median |step-to-step change| in log units, lag-1 autocorrelation of the changes).

    A period-2 bounce (full-batch GD past its stability limit, heavy momentum) has a
    strongly negative autocorrelation; batch noise around a trend is near zero."""
    if values.size < 4:
        return MISSING, MISSING
    y = (
        np.log(np.maximum(values, 1e-12))
        if np.all(values > 0)
        else values / (np.abs(values).mean() + 1e-12)
    )
    d = np.diff(y)
    size = float(median(np.abs(d)))
    sd = float(np.std(d))
    if sd <= 0:
        return _clip(size, 0, 30), 0.0
    ac = float(np.mean((d[1:] - d.mean()) * (d[:-1] - d.mean())) / sd**2)
    return _clip(size, 0, 30), _clip(ac, -1, 1)


def _loss_features(t: Track, out: dict[str, float]) -> float:
    """Features of the training loss; returns its start level (for others to compare)."""
    v = t.values
    bad = np.flatnonzero(~np.isfinite(v))
    out["nonfinite"] = 1.0 if bad.size else 0.0
    finite = v[: bad[0]] if bad.size else v
    out["steps_log10"] = math.log10(max(t.size, 1))
    if finite.size < 3:
        return math.nan
    start = float(median(finite[:3]))
    seg = _segments(finite)
    end, low, high = float(seg[-1]), float(seg.min()), float(seg.max())
    out["end_vs_start"] = _log_ratio(end, start)
    out["min_vs_start"] = _log_ratio(low, start)
    out["end_vs_min"] = _log_ratio(end, low)
    out["max_vs_start"] = _log_ratio(high, start)
    out["peak_vs_start"] = _log_ratio(float(np.max(finite)), start)
    out["peak_at"] = float(np.argmax(finite)) / max(finite.size - 1, 1)
    out["min_at"] = float(np.argmin(seg)) / max(seg.size - 1, 1)
    drop = start - low
    scale = abs(drop) + 1e-12
    quarter = max(1, seg.size // 4)
    out["late_fall_share"] = _clip((float(seg[-quarter - 1]) - end) / scale, -30, 30)
    out["early_fall_share"] = _clip((start - float(seg[min(3, seg.size - 1)])) / scale, -30, 30)
    out["drop_share"] = _clip((start - end) / (abs(start) + 1e-12), -30, 1)
    out["end_level_log10"] = _clip(math.log10(abs(end) + 1e-12), -12, 30)
    out["start_level_log10"] = _clip(math.log10(abs(start) + 1e-12), -12, 30)
    third = finite[2 * finite.size // 3 :]
    first = finite[: max(4, finite.size // 3)]
    out["bounce_late"], out["bounce_late_ac"] = _bounce(third)
    out["bounce_early"], _ = _bounce(first)
    if out["bounce_late"] != MISSING and out["bounce_early"] != MISSING:
        out["bounce_ratio"] = _clip(
            math.log((out["bounce_late"] + 1e-9) / (out["bounce_early"] + 1e-9))
        )
    if third.size >= 4:
        q10, q50, q90 = np.percentile(third, [10, 50, 90])
        out["late_spread"] = _clip(float((q90 - q10) / (abs(q50) + 1e-12)), 0, 30)
        half = third.size // 2
        a, b = float(median(third[:half])), float(median(third[half:]))
        out["late_settling"] = _clip((a - b) / (float(q90 - q10) + 1e-12), -30, 30)
        # The late swing against how far the loss came down: batch noise at a floor is
        # small beside the fall that reached it; a bounce in place is as big as the fall.
        fall = abs(start - float(q50)) + 1e-9 * abs(start) + 1e-30
        out["late_swing_vs_fall"] = _clip(math.log10(float(q90 - q10) / fall + 1e-12), -12, 12)
    ups = np.diff(seg) > 0.1 * np.abs(seg[:-1]) if seg.size > 1 else np.array([False])
    out["rises_share"] = float(np.mean(ups))
    return start


def _grad_features(t: Track, out: dict[str, float]) -> float:
    v = t.values[np.isfinite(t.values) & (t.values > 0)]
    out["has_grad"] = 1.0
    if v.size < 4:
        return math.nan
    g = np.log10(v)
    k = max(2, g.size // 10)
    early, late, mid = float(median(g[:k])), float(median(g[-k:])), float(median(g))
    out["grad_late_vs_early"] = late - early
    out["grad_max_vs_median"] = float(np.max(g)) - mid
    # Growth, not the start: the first steps' gradient is often the largest of a run
    # that then converges, so the peak is taken after the early window, and the rise is
    # the height over the lowest level reached before it.
    out["grad_max_vs_early"] = float(np.max(g[k:])) - early
    out["grad_rise"] = float(np.max(g - np.minimum.accumulate(g)))
    out["grad_min_vs_early"] = float(np.min(_segments(g))) - early
    out["grad_level"] = mid
    out["grad_late_level"] = late
    local = _block_medians(g, max(5, min(50, g.size // 20)))
    out["grad_spike_rate"] = float(np.mean(g - local > 1.0))
    out["grad_spike_rate_2"] = float(np.mean(g - local > 2.0))
    out["grad_bounce"], _ = _bounce(v)
    seg = _segments(g)
    out["grad_trend"] = (
        float(np.polyfit(np.linspace(0, 1, seg.size), seg, 1)[0]) if seg.size > 2 else 0.0
    )
    return 10**mid


def _lr_features(lr: Track | None, ctx: RunContext, grad_mid: float, out: dict[str, float]) -> None:
    v = lr.values[np.isfinite(lr.values) & (lr.values > 0)] if lr is not None else np.array([])
    if v.size >= 2:
        out["has_lr"] = 1.0
        peak = float(np.max(v))
        out["lr_log10"] = math.log10(peak)
        out["lr_end_vs_peak"] = _clip(math.log10(float(v[-1]) / peak))
        out["lr_start_vs_peak"] = _clip(math.log10(float(v[0]) / peak))
        out["lr_peak_at"] = float(np.argmax(v)) / max(v.size - 1, 1)
        seg = _segments(v)
        rises = np.diff(seg) > 1e-9 * peak
        out["lr_turns"] = float(np.sum(rises[1:] != rises[:-1])) if rises.size > 1 else 0.0
    elif ctx.lr is not None:
        out["has_lr"] = 0.5  # the configured lr, not a logged series
        out["lr_log10"] = math.log10(ctx.lr)
    if "lr_log10" in out and math.isfinite(grad_mid):
        out["step_size_log10"] = out["lr_log10"] + math.log10(grad_mid)


def _val_features(
    val: Track | None, acc: Track | None, train_end: float, out: dict[str, float]
) -> None:
    if val is not None:
        v = val.values[np.isfinite(val.values)]
        out["val_nonfinite"] = 1.0 if v.size < val.size else 0.0
        if v.size >= 3:
            out["has_val"] = 1.0
            smooth = np.convolve(v, np.ones(3) / 3, mode="valid") if v.size >= 5 else v
            i = int(np.argmin(smooth))
            best, last = float(smooth[i]), float(median(v[-3:]))
            start = float(v[0])
            out["val_end_vs_min"] = _log_ratio(last, best)
            out["val_min_at"] = i / max(smooth.size - 1, 1)
            out["val_end_vs_start"] = _log_ratio(last, start)
            out["val_min_vs_start"] = _log_ratio(best, start)
            out["val_points_log10"] = math.log10(v.size)
            out["val_bounce"], _ = _bounce(v)
            if math.isfinite(train_end):
                out["val_vs_train_end"] = _log_ratio(last, train_end)
            after = v[i:]
            if after.size >= 3:
                rises = np.diff(after) > 0
                out["val_rising_share"] = float(np.mean(rises))
    if acc is not None:
        a = acc.values[np.isfinite(acc.values)]
        if a.size >= 3:
            out["has_acc"] = 1.0
            out["acc_best"] = float(np.max(a))
            out["acc_drop_from_best"] = float(np.max(a) - median(a[-3:]))
            out["acc_gain"] = float(median(a[-3:]) - a[0])


def _context_features(ctx: RunContext, steps: int, out: dict[str, float]) -> None:
    name = (ctx.optimizer or "").lower()
    out["adaptive"] = MISSING if not name else (1.0 if name in ADAPTIVE else 0.0)
    out["momentum"] = (
        ctx.momentum
        if ctx.momentum is not None
        else (MISSING if not name or name in ADAPTIVE else 0.0)
    )
    out["batch_log2"] = math.log2(ctx.batch_size) if ctx.batch_size else MISSING
    out["cyclical"] = 1.0 if ctx.schedule in CYCLICAL_SCHEDULES else 0.0
    out["warmup_share"] = min(ctx.warmup_steps / max(steps, 1), 10.0) if ctx.warmup_steps else 0.0
    out["clipped"] = 1.0 if ctx.grad_clip_norm else 0.0


FEATURES: tuple[str, ...] = (
    "nonfinite", "steps_log10", "end_vs_start", "min_vs_start", "end_vs_min", "max_vs_start",
    "peak_vs_start", "peak_at", "min_at", "late_fall_share", "early_fall_share", "drop_share",
    "end_level_log10", "start_level_log10", "bounce_late", "bounce_late_ac", "bounce_early",
    "bounce_ratio", "late_spread", "late_settling", "late_swing_vs_fall", "rises_share",
    "has_grad", "grad_late_vs_early", "grad_max_vs_median", "grad_max_vs_early", "grad_rise",
    "grad_min_vs_early", "grad_level", "grad_late_level", "grad_spike_rate",
    "grad_spike_rate_2", "grad_bounce", "grad_trend",
    "has_lr", "lr_log10", "lr_end_vs_peak", "lr_start_vs_peak", "lr_peak_at", "lr_turns",
    "step_size_log10",
    "val_nonfinite", "has_val", "val_end_vs_min", "val_min_at", "val_end_vs_start",
    "val_min_vs_start", "val_points_log10", "val_bounce", "val_vs_train_end",
    "val_rising_share", "has_acc", "acc_best", "acc_drop_from_best", "acc_gain",
    "adaptive", "momentum", "batch_log2", "cyclical", "warmup_share", "clipped",
    *(f"rule_{kind}" for kind in RULE_KINDS),
)  # fmt: skip


def curve_features(
    tracks: Mapping[str, Track], ctx: RunContext, rules: Mapping[str, float] | None = None
) -> FloatArray:
    """The feature vector (in FEATURES order) of a run's tracks and context; `rules` maps
    each rule's kind to the confidence of its finding (absent or 0: it did not fire)."""
    out: dict[str, float] = {"has_grad": 0.0, "has_lr": 0.0, "has_val": 0.0, "has_acc": 0.0}
    for kind in RULE_KINDS:
        out[f"rule_{kind}"] = (rules or {}).get(kind, 0.0)
    train = tracks.get("train_loss")
    start = _loss_features(train, out) if train is not None else math.nan
    grad_mid = _grad_features(tracks["grad_norm"], out) if "grad_norm" in tracks else math.nan
    _lr_features(tracks.get("lr"), ctx, grad_mid, out)
    end = math.nan
    if train is not None and math.isfinite(start):
        finite = train.values[np.isfinite(train.values)]
        end = float(median(finite[-max(3, finite.size // 20) :]))
    _val_features(tracks.get("val_loss"), tracks.get("val_accuracy"), end, out)
    _context_features(ctx, train.size if train is not None else 0, out)
    return np.array([out.get(name, MISSING) for name in FEATURES], dtype=np.float64)
