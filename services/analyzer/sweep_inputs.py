"""What the sweep analysis knows about each trial: its config, figures and findings.

Pure data: the caller (services.analysis.sweep_analysis) reads these from the store. A trial's
lr is its effective lr, after `lr_scaling` for its batch size, since that is the step
size the optimizer took; `spec_lr` keeps the value written in the spec.

A trial diverged when the analyzer found a divergence, a loss ended non-finite, it was
stopped for divergence (by the runner's blow-up stop or the live analyzer), or its
val_loss blew up by the runner's default bars (services.analyzer.blowup): its worst
value far above its best and its start. A diverged lr bounds the stable range from above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from services.analyzer.blowup import BlowupRule
from services.specs import LossStop, LrScaling, scaled_lr

__all__ = [
    "SLOW_KINDS",
    "FindingBrief",
    "Goal",
    "MetricFigures",
    "Outcome",
    "SweepTrial",
    "TrialConfig",
    "config_of",
]

Goal = Literal["minimize", "maximize"]
Outcome = Literal["diverged", "too_slow", "ok", "no_data"]

# Findings that say the lr was too small for the budget (or the run never got going).
SLOW_KINDS = frozenset({"slow_convergence", "underfitting", "plateau"})
_LIVE = frozenset({"queued", "running"})
_DEFAULT_STOP = LossStop()
# The bars of the runner's default stop, applied to val_loss.
_BLOWUP = BlowupRule(_DEFAULT_STOP.loss_above_best, _DEFAULT_STOP.loss_above_start)


@dataclass(frozen=True)
class MetricFigures:
    """One metric of one trial, summarised: its first and last points and its finite
    extremes (where read)."""

    last_step: int
    final: float  # the value at the last step; NaN / inf are kept (a diverged run)
    low: float | None = None  # the smallest finite value; None when none is finite
    high: float | None = None
    first: float | None = None  # the value at the first step

    def best(self, goal: Goal) -> float | None:
        return self.low if goal == "minimize" else self.high


@dataclass(frozen=True)
class FindingBrief:
    kind: str
    severity: str
    step: int | None = None


@dataclass(frozen=True)
class TrialConfig:
    optimizer: str | None
    lr: float | None  # effective: after lr_scaling
    spec_lr: float | None  # optimizer.lr as written
    batch_size: int | str | None  # an int, "full", or None when unknown


@dataclass(frozen=True)
class SweepTrial:
    """The per-trial input of `analyze_sweep`. `metrics` holds the figures of the
    sweep's metric and of train_loss / val_loss, where logged; `findings` is None for a
    trial never analysed (no data yet)."""

    trial_id: int
    number: int
    status: str
    params: Mapping[str, Any] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, MetricFigures] = field(default_factory=dict)
    findings: tuple[FindingBrief, ...] | None = None
    last_step: int | None = None
    stop_reason: str | None = None

    @property
    def live(self) -> bool:
        return self.status in _LIVE

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(f.kind for f in self.findings or ())

    @property
    def has_data(self) -> bool:
        return self.findings is not None or bool(self.metrics)

    def outcome(self) -> Outcome:
        """Diverged (see the module's docstring), too slow, ok, no data."""
        if not self.has_data:
            return "no_data"
        ended_nonfinite = any(
            not math.isfinite(m.final) for name, m in self.metrics.items() if "loss" in name
        )
        stopped = self.status == "pruned" and (self.stop_reason or "").startswith("diverged")
        if "divergence" in self.kinds or ended_nonfinite or stopped or self.val_loss_blew_up:
            return "diverged"
        if self.kinds & SLOW_KINDS:
            return "too_slow"
        return "ok"

    @property
    def val_loss_blew_up(self) -> bool:
        """Its worst val_loss far above its best and its start level: the first
        train_loss (the untrained model's), else the first val_loss."""
        val = self.metrics.get("val_loss")
        if val is None or val.low is None or val.high is None:
            return False
        train = self.metrics.get("train_loss")
        start = train.first if train is not None and train.first is not None else val.first
        if start is None or not math.isfinite(start):
            return False  # without a start level a rise cannot be told from a fall
        return _BLOWUP.blew_up(val.high, val.low, start)


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def config_of(spec: Mapping[str, Any]) -> TrialConfig:
    """The optimizer, lr and batch size of a stored TrialSpec (its JSON). Tolerant: a run
    logged from elsewhere may have no spec, and then every field is None."""
    opt = spec.get("optimizer")
    opt = opt if isinstance(opt, Mapping) else {}
    name = opt.get("name")
    spec_lr = _positive(opt.get("lr"))
    raw_bs = spec.get("batch_size")
    batch: int | str | None = None
    if raw_bs == "full" or (isinstance(raw_bs, int) and not isinstance(raw_bs, bool)):
        batch = raw_bs
    lr = spec_lr
    scaling = spec.get("lr_scaling")
    if lr is not None and isinstance(batch, int) and batch >= 1 and isinstance(scaling, Mapping):
        try:
            lr = scaled_lr(lr, batch, LrScaling.model_validate(dict(scaling)))
        except ValueError:  # a malformed scaling block: the lr as written
            lr = spec_lr
    return TrialConfig(
        optimizer=name if isinstance(name, str) else None,
        lr=lr,
        spec_lr=spec_lr,
        batch_size=batch,
    )
