"""diagnose(): run every rule over a run's series and settle what to report.

Some findings explain others, and reporting both would give contradictory advice: after
a divergence, the flat or bouncing curve before it is not a separate problem; a loss that
bounces is not also "slow" or "stuck" (those would say: raise the lr). Underfitting covers
a plateau that lasts to the end, and so do vanishing gradients (its cause) and exploding
gradients (no progress while the gradient explodes is instability); a steady slow
decline is not "stuck"; a plateau escaped late explains a fast fall at the end; an lr
schedule that starved the run explains a flat, high loss better than capacity does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import SEVERITIES, Diagnosis, Finding, Value
from services.analyzer.recommend import fmt
from services.analyzer.rules import RULES
from services.analyzer.series import SeriesLike

__all__ = ["diagnose"]

SUPPRESSES: dict[str, frozenset[str]] = {
    "divergence": frozenset(
        {
            "oscillation",
            "slow_convergence",
            "plateau",
            "underfitting",
            "overfitting",
            "vanishing_gradients",
        }
    ),
    "oscillation": frozenset({"slow_convergence", "plateau", "underfitting"}),
}


def _settle(found: dict[str, Finding]) -> dict[str, Finding]:
    drop: set[str] = set()
    for kind, suppressed in SUPPRESSES.items():
        if kind in found:
            drop |= suppressed
    plateau = found.get("plateau")
    if plateau is not None:
        if plateau.evidence.get("lr_starved"):
            # The schedule stopped the run: not the model's capacity, not a slow lr.
            drop |= {"underfitting", "slow_convergence"}
        elif plateau.evidence.get("escaped"):
            # The fall at the end is the escape from the plateau, not a slow pace.
            drop.add("slow_convergence")
        elif "slow_convergence" in found:
            # A steady decline (measured where it is least noisy) is not "no progress".
            drop.add("plateau")
        elif "underfitting" in found or "vanishing_gradients" in found:
            drop.add("plateau")  # a flat run to the end is what those describe
        elif "exploding_gradients" in found and not plateau.evidence.get("escaped"):
            # No progress while the gradient explodes is instability: "raise the lr, the
            # steps are too small" would contradict the finding that explains it.
            drop.add("plateau")
    return {kind: f for kind, f in found.items() if kind not in drop}


def _healthy(curves: Curves, ctx: RunContext) -> Finding:
    evidence: dict[str, Value] = {}
    parts: list[str] = []
    p = curves.train
    if p is not None and p.bins.size:
        best_i = int(np.argmin(p.bins.med))
        start, best = p.raw(p.start), p.raw(float(p.bins.med[best_i]))
        last = p.raw(float(p.bins.med[-1]))
        evidence.update({"train_start": start, "train_best": best, "train_last": last})
        parts.append(f"train_loss {fmt(start)} -> {fmt(last)} (best {fmt(best)})")
    v = curves.val
    if v is not None and v.size:
        i = int(np.argmin(v.smooth))
        evidence.update({"val_best": v.raw(float(v.smooth[i])), "val_best_step": int(v.steps[i])})
        parts.append(f"val_loss best {fmt(v.raw(float(v.smooth[i])))} at step {int(v.steps[i])}")
    swa = curves.track("swa_val_loss")
    if swa is not None and np.isfinite(swa.values[-1]):
        # The averaged model's own evaluation: worth showing next to the best val_loss.
        evidence["swa_val_loss"] = float(swa.values[-1])
        parts.append(f"swa_val_loss {fmt(float(swa.values[-1]))}")
    bins = 0 if p is None else p.bins.size
    confidence = 0.8 if bins >= 12 else 0.5
    if ctx.running:
        confidence *= 0.6
    summary = "; ".join(parts) if parts else "no loss series to judge"
    return Finding(
        kind="healthy",
        severity="info",
        confidence=round(confidence, 3),
        step=None,
        summary=f"{summary}; no rule found a problem.",
        evidence=evidence,
        recommendation="No change needed.",
    )


def diagnose(series: Mapping[str, SeriesLike], context: RunContext | None = None) -> Diagnosis:
    """Findings for one run: its metric series by name, and how it was configured.

    A running trial (context.running) gets a provisional diagnosis, judged with wider
    margins; a non-finite loss is reported whatever the state."""
    ctx = context or RunContext()
    curves = Curves(series, ctx)
    found: dict[str, Finding] = {}
    for kind, rule in RULES.items():
        finding = rule(curves, ctx)
        if finding is not None:
            found[kind] = finding
    findings = list(_settle(found).values()) or [_healthy(curves, ctx)]
    if ctx.running:
        findings = [dataclasses.replace(f, provisional=True) for f in findings]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (-rank[f.severity], -f.confidence))
    return Diagnosis(tuple(findings), provisional=ctx.running)
