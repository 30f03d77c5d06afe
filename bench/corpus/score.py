"""Score the analyzer on the corpus: precision and recall per kind, and what it confused.

A finding of kind K on a curve whose labels (primary or also-acceptable) do not include
K is a false positive; a curve whose primary label is K without a K finding is a false
negative. A K finding on a curve that only allows K counts neither way. `healthy` is
"found" when the diagnosis is healthy, i.e. no rule fired.

The split: a curve is held out when its seed is odd or its task is one of its kind's
HELD_OUT_TASKS; the rest is the tuning half.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.corpus.files import Curve
from bench.corpus.recipes import HELD_OUT_TASKS
from services.analyzer import KINDS, RunContext, diagnose

__all__ = [
    "INPUTS",
    "TARGETS",
    "Judged",
    "KindScore",
    "held_out",
    "judge",
    "misses",
    "report",
    "scores",
    "shortfalls",
]

# (precision, recall) targets of the issue.
TARGETS: dict[str, tuple[float, float]] = {
    kind: (0.9, 0.85) if kind in ("divergence", "overfitting", "healthy") else (0.8, 0.8)
    for kind in KINDS
}


@dataclass(frozen=True)
class Judged:
    curve: Curve
    found: frozenset[str]
    seconds: float


@dataclass(frozen=True)
class KindScore:
    kind: str
    curves: int  # with this primary label
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def meets(self) -> bool:
        p, r = TARGETS[self.kind]
        return self.precision >= p and self.recall >= r


def held_out(curve: Curve) -> bool:
    return curve.seed % 2 == 1 or curve.task in HELD_OUT_TASKS.get(curve.kind, ())


# What a run hands the analyzer: everything lrlab's runner logs, with its spec; the same
# without grad_norm; or, like a bare external run, its loss series and no configuration.
INPUTS = ("full", "no-grad-norm", "losses-only")
_LOSSES = frozenset({"train_loss", "val_loss", "val_accuracy"})
Series = dict[str, tuple[list[int], list[float]]]


def _inputs(curve: Curve, inputs: str) -> tuple[Series, RunContext]:
    if inputs == "full":
        return curve.series, RunContext.from_spec(curve.spec)
    if inputs == "no-grad-norm":
        series = {k: v for k, v in curve.series.items() if k != "grad_norm"}
        return series, RunContext.from_spec(curve.spec)
    if inputs == "losses-only":
        return {k: v for k, v in curve.series.items() if k in _LOSSES}, RunContext()
    raise ValueError(f"inputs must be one of {INPUTS}, not {inputs!r}")


def judge(curves: Iterable[Curve], inputs: str = "full") -> list[Judged]:
    """Diagnose every made curve (those whose recipe missed are not scored), from the
    inputs named (INPUTS)."""
    out = []
    for curve in curves:
        if not curve.made:
            continue
        series, context = _inputs(curve, inputs)
        began = time.perf_counter()
        diagnosis = diagnose(series, context)
        seconds = time.perf_counter() - began
        out.append(Judged(curve, frozenset(diagnosis.kinds), seconds))
    return out


def scores(judged: Sequence[Judged]) -> list[KindScore]:
    out = []
    for kind in KINDS:
        tp = fp = fn = n = 0
        for j in judged:
            primary = j.curve.kind == kind
            n += primary
            hit = kind in j.found
            if primary:
                tp += hit
                fn += not hit
            elif hit and kind not in j.curve.labels:
                fp += 1
        out.append(KindScore(kind, n, tp, fp, fn))
    return out


def shortfalls(judged: Sequence[Judged]) -> list[str]:
    """The kinds below their targets, as lines naming the figures."""
    out = []
    for s in scores(judged):
        if not s.meets:
            p, r = TARGETS[s.kind]
            out.append(
                f"{s.kind}: precision {s.precision:.2f} (target {p}), "
                f"recall {s.recall:.2f} (target {r})"
            )
    return out


def misses(judged: Sequence[Judged]) -> list[str]:
    """One line per curve with a false positive or a false negative."""
    lines = []
    for j in judged:
        wrong = sorted(k for k in j.found if k not in j.curve.labels)
        missed = j.curve.kind not in j.found
        if wrong or missed:
            what = []
            if missed:
                what.append(f"missed {j.curve.kind}")
            if wrong:
                what.append(f"also said {', '.join(wrong)}")
            lines.append(f"{j.curve.id}: {'; '.join(what)} (found {sorted(j.found)})")
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(judged: Sequence[Judged], title: str) -> str:
    """A markdown table of the per-kind scores and a confusion table."""
    rows = []
    for s in scores(judged):
        p, r = TARGETS[s.kind]
        rows.append(
            (
                s.kind,
                s.curves,
                s.tp,
                s.fp,
                s.fn,
                f"{s.precision:.2f}",
                f"{s.recall:.2f}",
                f"{p} / {r}",
                "yes" if s.meets else "**no**",
            )
        )
    head = ("kind", "curves", "TP", "FP", "FN", "precision", "recall", "target P / R", "met")
    text = f"{title} ({len(judged)} curves)\n\n" + _table(head, rows)
    confusion: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for j in judged:
        confusion[j.curve.kind].update(j.found)
    short = [k[:8] for k in KINDS]
    matrix = [
        (kind, sum(1 for j in judged if j.curve.kind == kind), *(confusion[kind][k] for k in KINDS))
        for kind in KINDS
    ]
    text += "\n\nCurves by primary label (rows) and the kinds found on them (columns):\n\n"
    return text + _table(("label", "n", *short), matrix)
