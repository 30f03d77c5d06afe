"""What the analyzer returns: findings with evidence and a recommended change.

Both are frozen and JSON-ready through `to_dict()`. Non-finite numbers in evidence (a loss
that reached inf) become the strings "Infinity", "-Infinity" and "NaN", as in every lrlab
API answer: strict JSON has no literal
for them, and dropping them would hide exactly the evidence of a divergence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.analyzer.version import ANALYZER_VERSION
from services.domain.kinds import SEVERITIES, Severity

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Alternative",
    "Diagnosis",
    "Finding",
    "Severity",
    "Value",
    "confidence_from",
    "json_value",
]


# Stable ids, stored with findings and shown in the API; never rename one.
KINDS: tuple[str, ...] = (
    "divergence",
    "oscillation",
    "slow_convergence",
    "plateau",
    "overfitting",
    "underfitting",
    "exploding_gradients",
    "vanishing_gradients",
    "healthy",
    "insufficient_data",  # too little to judge: no training loss, or too few points
)

# Evidence and spec changes hold numbers, names, flags, lists of widths or nothing.
Value = float | int | str | bool | tuple[int, ...] | None


def json_value(value: Value) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, tuple):
        return list(value)
    return value


def _json_map(values: Mapping[str, Value]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in values.items()}


@dataclass(frozen=True)
class Alternative:
    """Another change that addresses the same finding (apply one alternative, not all)."""

    text: str
    changes: Mapping[str, Value] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "changes": _json_map(self.changes)}


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or `healthy`) with a run.

    `changes` maps spec paths ("optimizer.lr", "regularization.grad_clip_norm", ...) to
    the values recommended, meant to be applied together; `alternatives` are other
    options. `step` is where the condition starts (None when it has no onset)."""

    kind: str
    severity: Severity
    confidence: float  # 0..1
    step: int | None
    summary: str  # the evidence as a sentence, with numbers from the series
    evidence: Mapping[str, Value]
    recommendation: str
    changes: Mapping[str, Value] = field(default_factory=dict)
    alternatives: tuple[Alternative, ...] = ()
    provisional: bool = False  # judged on a run still in progress

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; valid kinds: {KINDS}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1 (got {self.confidence})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "confidence": round(self.confidence, 3),
            "step": self.step,
            "summary": self.summary,
            "evidence": _json_map(self.evidence),
            "recommendation": self.recommendation,
            "changes": _json_map(self.changes),
            "alternatives": [alt.to_dict() for alt in self.alternatives],
            "provisional": self.provisional,
        }


@dataclass(frozen=True)
class Diagnosis:
    """All findings of one run, most severe first; exactly one `healthy` if none else."""

    findings: tuple[Finding, ...]
    provisional: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.findings)

    @property
    def healthy(self) -> bool:
        return self.kinds == ("healthy",)

    def get(self, kind: str) -> Finding | None:
        return next((f for f in self.findings if f.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provisional": self.provisional,
            "kinds": list(self.kinds),
            "findings": [f.to_dict() for f in self.findings],
            "analyzer_version": ANALYZER_VERSION,
        }


def confidence_from(ratio: float, *, running: bool = False) -> float:
    """Confidence from how far a statistic passed its threshold (ratio >= 1).

    Just past the threshold gives 0.55, twice it 0.75, far beyond 0.95; a running trial's
    findings are provisional and get 80% of that."""
    if not math.isfinite(ratio):
        ratio = 1e9
    ratio = max(ratio, 1.0)
    value = 0.55 + 0.4 * (1.0 - 1.0 / ratio)
    return round(value * (0.8 if running else 1.0), 3)
