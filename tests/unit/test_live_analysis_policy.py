"""The live stop policy: which findings stop a running trial, and the reason it records."""

from __future__ import annotations

from services.analysis.stop_policy import OVERFIT_MIN_CONFIDENCE, Stop, decide_stop
from services.analyzer import Diagnosis, Finding
from services.analyzer.findings import Severity
from services.specs.sweep import Policy

DEFAULT = Policy()
OVERFIT_TOO = Policy(stop_on_overfitting=True)


def found(kind: str, severity: Severity = "warning", confidence: float = 0.7) -> Diagnosis:
    finding = Finding(
        kind=kind,
        severity=severity,
        confidence=confidence,
        step=100,
        summary=f"{kind} evidence",
        evidence={},
        recommendation="",
        provisional=True,
    )
    return Diagnosis((finding,), provisional=True)


def test_critical_divergence_stops_at_once_by_default() -> None:
    stop = decide_stop(DEFAULT, found("divergence", "critical"))
    assert stop == Stop("divergence", "diverged: divergence evidence")


def test_a_milder_divergence_stops_once_a_second_pass_confirms_it() -> None:
    assert decide_stop(DEFAULT, found("divergence", "warning")) is None
    stop = decide_stop(DEFAULT, found("divergence", "warning"), {"divergence"})
    assert stop is not None and stop.reason == "diverged: divergence evidence"


def test_a_sweep_can_turn_the_divergence_stop_off() -> None:
    off = Policy(stop_on_divergence=False)
    assert decide_stop(off, found("divergence", "critical"), {"divergence"}) is None


def test_overfitting_never_stops_unless_opted_in() -> None:
    assert decide_stop(DEFAULT, found("overfitting", "critical", 0.9), {"overfitting"}) is None


def test_opted_in_overfitting_stops_only_when_confirmed_confident_and_not_mild() -> None:
    assert decide_stop(OVERFIT_TOO, found("overfitting")) is None  # first sight
    assert decide_stop(OVERFIT_TOO, found("overfitting", "info"), {"overfitting"}) is None
    shaky = found("overfitting", confidence=OVERFIT_MIN_CONFIDENCE - 0.01)
    assert decide_stop(OVERFIT_TOO, shaky, {"overfitting"}) is None
    stop = decide_stop(OVERFIT_TOO, found("overfitting"), {"overfitting"})
    assert stop == Stop("overfitting", "overfitting: overfitting evidence")


def test_other_findings_never_stop_a_trial() -> None:
    for kind in ("oscillation", "plateau", "slow_convergence", "exploding_gradients"):
        assert decide_stop(OVERFIT_TOO, found(kind, "critical", 0.99), {kind}) is None
