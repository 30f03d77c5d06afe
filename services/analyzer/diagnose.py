"""diagnose(): one primary finding per run, and the plan that goes with it.

Three layers decide it. Definitions first (docs/analyzer.md): a run with no training
loss, or too few points of it, is `insufficient_data`, never healthy; a training loss that
became non-finite is a divergence; one alternating up and down on nearly every step, far
above where it could settle, oscillates (period_two.py). Then the kind classifier
(classifier.py: trees fitted on curves of many model families, judged on families they
never saw) decides which condition the run primarily shows. The rules measure: when the
chosen kind's rule fired, its finding (onset, evidence, a change fitted to the curve) is
the one reported; when it did not, fallback.py gives a finding of that kind from the
stored values. One finding, so the advice never pulls two ways (raise and lower the lr in
one analysis).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from services.analyzer.classifier import KindModel, default_model
from services.analyzer.context import RunContext
from services.analyzer.curve_series import SeriesLike
from services.analyzer.curves import Curves
from services.analyzer.definitions import admissible
from services.analyzer.fallback import fallback_finding, loss_facts, val_facts
from services.analyzer.features import FEATURES, curve_features
from services.analyzer.findings import Diagnosis, Finding, Value
from services.analyzer.period_two import period_two
from services.analyzer.recommend import fmt
from services.analyzer.rule_view import rule_findings, settle

__all__ = ["MIN_POINTS", "diagnose", "healthy_finding"]

# Fewer finite training-loss points than this (and no non-finite one): too short to judge.
MIN_POINTS = 10


def healthy_finding(curves: Curves, ctx: RunContext) -> Finding:
    """The healthy finding: what the run reached, quoted from stored values."""
    loss_ev, loss_text = loss_facts(curves)
    val_ev, val_text = val_facts(curves)
    evidence: dict[str, Value] = {**loss_ev, **val_ev}
    parts = [loss_text, val_text]
    swa = curves.track("swa_val_loss")
    if swa is not None and np.isfinite(swa.values[-1]):
        # The averaged model's own evaluation: worth showing next to the best val_loss.
        evidence["swa_val_loss"] = float(swa.values[-1])
        parts.append(f"swa_val_loss {fmt(float(swa.values[-1]))}")
    confidence = 0.8 if curves.tracks["train_loss"].size >= 50 else 0.5
    if ctx.running:
        confidence *= 0.6
    return Finding(
        kind="healthy",
        severity="info",
        confidence=round(confidence, 3),
        step=None,
        summary="; ".join(p for p in parts if p) + "; no problem found.",
        evidence=evidence,
        recommendation="No change needed.",
    )


def _blew_up(curves: Curves) -> bool:
    """A loss became non-finite (training or validation), or the worker stopped the run
    because its loss blew up: a divergence by definition, however little else there is."""
    if curves.context.stopped_diverged:
        return True
    return any(
        t is not None and not np.all(np.isfinite(t.values))
        for t in (curves.track("train_loss"), curves.track("val_loss"))
    )


def _insufficient(curves: Curves) -> Finding | None:
    """`insufficient_data` when there is nothing to judge the run by; None otherwise."""
    t = curves.track("train_loss")
    logged = sorted(curves.tracks)
    if _blew_up(curves):
        return None
    if t is None:
        what = f"logged: {', '.join(logged)}" if logged else "no metrics were logged"
        summary = f"No training loss series to judge ({what})."
    elif t.size < MIN_POINTS:
        summary = (
            f"Only {t.size} training-loss points; at least {MIN_POINTS} are needed to judge a run."
        )
    else:
        return None
    return Finding(
        kind="insufficient_data",
        severity="info",
        confidence=1.0,
        step=None,
        summary=summary,
        evidence={"train_loss_points": 0 if t is None else t.size, "logged": ", ".join(logged)},
        recommendation=(
            "Log train_loss every step (and lr, grad_norm, val_loss): see the metric names "
            "lrlab reads in docs/metric-names.md."
        ),
    )


def _early_warning(found: Mapping[str, Finding]) -> Finding | None:
    """The sharpness warning (rules_sharpness): the curvature passed the optimizer's
    stability limit and the loss has not blown up yet. It outranks whatever the curve
    shows so far: it is the change to make before the blow-up."""
    warning = found.get("divergence")
    return warning if warning is not None and warning.evidence.get("early_warning") else None


def _primary_kind(
    curves: Curves, ctx: RunContext, model: KindModel, found: Mapping[str, Finding]
) -> tuple[str, float]:
    """The run's primary kind and the confidence in it."""
    if _blew_up(curves):
        return "divergence", 1.0  # by definition, whatever the curve did before
    if curves.layers is not None:
        # Per-layer norms are the direct evidence: the gradient rules judge by them alone
        # when they are logged (rules_layers), and what they find is the primary finding.
        for kind in ("vanishing_gradients", "exploding_gradients"):
            if kind in found:
                return kind, found[kind].confidence
    if period_two(curves.tracks["train_loss"]) is not None:
        # Up, down, up, down on nearly every step, far above where it could settle: no
        # batch noise does that (definitions, docs/analyzer.md); it is the lr.
        return "oscillation", 0.9
    votes = {kind: f.confidence for kind, f in settle(found).items()}
    vector = curve_features(curves.tracks, ctx, votes)
    features = dict(zip(FEATURES, vector.tolist(), strict=True))
    probabilities = model.probabilities(vector)
    allowed = [k for k in probabilities if admissible(k, features)]
    kind = max(allowed, key=lambda k: probabilities[k])
    return kind, probabilities[kind] / sum(probabilities[k] for k in allowed)


def diagnose(
    series: Mapping[str, SeriesLike],
    context: RunContext | None = None,
    *,
    model: KindModel | None = None,
) -> Diagnosis:
    """The primary finding of one run: its metric series by name, and how it was
    configured. `model` replaces the shipped kind classifier (leave-one-out scoring).

    A running trial (context.running) gets a provisional diagnosis; a non-finite loss is
    reported whatever the state."""
    ctx = context or RunContext()
    curves = Curves(series, ctx)
    finding = _insufficient(curves)
    if finding is None:
        found = rule_findings(curves, ctx)
        kind, confidence = _primary_kind(curves, ctx, model or default_model(), found)
        warning = _early_warning(found) if kind != "divergence" else None
        if warning is not None:
            finding = warning
        elif kind == "healthy":
            finding = healthy_finding(curves, ctx)
        else:
            rule = found.get(kind)
            if rule is not None:
                # The rule's measurement, with the confidence of both voices.
                finding = dataclasses.replace(
                    rule, confidence=round((rule.confidence + confidence) / 2, 3)
                )
            else:
                finding = fallback_finding(
                    kind, curves, ctx, confidence * (0.8 if ctx.running else 1.0)
                )
    if ctx.running:
        finding = dataclasses.replace(finding, provisional=True)
    return Diagnosis((finding,), provisional=ctx.running)
