"""Fit the kind classifier and measure it by leaving whole families out.

    .venv/bin/python -m bench.families.model              # leave-one-family-out report
    .venv/bin/python -m bench.families.model --misses     # ... and every miss
    .venv/bin/python -m bench.families.model --write      # refit on everything, write
                                                          # services/analyzer/kind_model.json

Leave-one-family-out: for each family, the trees are fitted on every other family and the
full analyzer (diagnose(), its definitional rules and the fitted trees) judges that
family's curves. Nothing about a family is seen before it is judged. lrlab's own recipe
corpus (tests/corpus) joins as four more families, one per task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.corpus.files import load_corpus
from bench.families.files import read_all
from services.analyzer import RunContext, diagnose
from services.analyzer.classifier import MODEL_PATH, KindModel
from services.analyzer.curves import Curves
from services.analyzer.features import FEATURES, curve_features
from services.analyzer.findings import KINDS
from services.analyzer.rule_view import rule_findings, settle
from services.tracking.run_config import context_from_config

__all__ = ["Example", "examples", "fit", "leave_one_family_out", "main"]

JUDGED = tuple(k for k in KINDS if k not in ("plateau", "insufficient_data"))
TARGETS = {kind: (0.9, 0.85) for kind in JUDGED}
Series = dict[str, Any]


@dataclass(frozen=True)
class Example:
    name: str
    family: str
    label: str
    series: Series
    context: RunContext


def _family_examples() -> list[Example]:
    out = []
    for c in read_all():
        total = int(c.series["train_loss"][0][-1]) + 1
        ctx = context_from_config(c.config, running=False, total_steps=total)
        out.append(Example(c.name, c.family, c.label, c.series, ctx))
    return out


def _recipe_examples() -> list[Example]:
    """lrlab's recipe corpus, a family per task; its plateau recipes have no judged kind."""
    out = []
    for c in load_corpus():
        if not c.made or c.kind not in JUDGED:
            continue
        ctx = RunContext.from_spec(
            c.spec, total_steps=c.steps_run if c.outcome == "succeeded" else None
        )
        out.append(Example(c.id, f"lrlab_{c.task}", c.kind, c.series, ctx))
    return out


def examples(include_recipes: bool = True) -> list[Example]:
    return _family_examples() + (_recipe_examples() if include_recipes else [])


def features_of(e: Example) -> np.ndarray:
    """The features diagnose() computes for the example, the rules' verdicts included."""
    curves = Curves(e.series, e.context)
    found = settle(rule_findings(curves, e.context))
    votes = {kind: f.confidence for kind, f in found.items()}
    return curve_features(curves.tracks, e.context, votes)


def _weights(ex: Sequence[Example]) -> np.ndarray:
    """Every family weighs the same in total, and within it every kind: a family with many
    curves (or a kind with many) must not decide what the trees learn."""
    fam = Counter(e.family for e in ex)
    fam_kind = Counter((e.family, e.label) for e in ex)
    kinds_in = {f: len({e.label for e in ex if e.family == f}) for f in fam}
    w = np.array([1.0 / (kinds_in[e.family] * fam_kind[(e.family, e.label)]) for e in ex])
    label_totals = Counter()
    for e, wi in zip(ex, w, strict=True):
        label_totals[e.label] += wi
    w *= np.array([1.0 / label_totals[e.label] for e in ex])
    return w * len(ex) / w.sum()


def fit(ex: Sequence[Example], x: np.ndarray, seed: int = 0) -> KindModel:
    from sklearn.ensemble import GradientBoostingClassifier

    y = np.array([e.label for e in ex])
    clf = GradientBoostingClassifier(
        n_estimators=120,
        max_depth=3,
        learning_rate=0.1,
        subsample=0.8,
        min_samples_leaf=5,
        random_state=seed,
    )
    clf.fit(x, y, sample_weight=_weights(ex))
    return export(clf, x[:1])


def export(clf: Any, probe: np.ndarray) -> KindModel:
    """The fitted trees as a KindModel (checked against the library's own answer)."""
    trees = clf.estimators_  # (stages, classes)
    stages, k = trees.shape
    flat = [(trees[s, c].tree_, c) for s in range(stages) for c in range(k)]
    width = max(t.node_count for t, _ in flat)
    n = len(flat)
    feature = np.full((n, width), -1, dtype=np.int64)
    threshold = np.zeros((n, width))
    left = np.zeros((n, width), dtype=np.int64)
    right = np.zeros((n, width), dtype=np.int64)
    value = np.zeros((n, width))
    for i, (t, _) in enumerate(flat):
        m = t.node_count
        leaf = t.children_left[:m] < 0
        idx = np.arange(m)
        feature[i, :m] = np.where(leaf, -1, t.feature[:m])
        threshold[i, :m] = t.threshold[:m]
        left[i, :m] = np.where(leaf, idx, t.children_left[:m])
        right[i, :m] = np.where(leaf, idx, t.children_right[:m])
        value[i, :m] = t.value[:m, 0, 0]
    scale = float(clf.learning_rate)
    depth = int(max(t.max_depth for t, _ in flat))
    classes = tuple(str(c) for c in clf.classes_)
    tree_class = np.array([c for _, c in flat], dtype=np.int64)
    # The constant the library starts from, recovered from its own raw score.
    raw = clf.decision_function(probe)[0]
    zero = KindModel(
        classes, FEATURES, np.zeros(k), scale, tree_class, feature, threshold, left, right,
        value, depth,
    )  # fmt: skip
    model = dataclasses.replace(zero, init=raw - _raw(zero, probe[0]))
    want = clf.predict_proba(probe)[0]
    got = np.array([model.probabilities(probe[0])[c] for c in classes])
    if not np.allclose(want, got, atol=1e-6):
        raise RuntimeError(f"exported trees disagree with the fitted model: {want} vs {got}")
    return model


def _raw(model: KindModel, x: np.ndarray) -> np.ndarray:
    p = model.probabilities(x)
    return np.log(np.array([p[c] for c in model.classes]))


@dataclass(frozen=True)
class Verdict:
    example: Example
    found: str  # the primary kind the analyzer reported


def leave_one_family_out(
    ex: Sequence[Example],
    x: np.ndarray,
    judge_families: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Verdict]:
    families = sorted({e.family for e in ex})
    out: list[Verdict] = []
    for family in families:
        if judge_families is not None and family not in judge_families:
            continue
        train = [i for i, e in enumerate(ex) if e.family != family]
        model = fit([ex[i] for i in train], x[train])
        for e in ex:
            if e.family == family:
                d = diagnose(e.series, e.context, model=model)
                out.append(Verdict(e, d.findings[0].kind))
        progress(family)
    return out


def report(verdicts: Sequence[Verdict], title: str) -> list[str]:
    lines = [title, f"{'kind':22} {'curves':>6} {'precision':>9} {'recall':>6}  target"]
    for kind in JUDGED:
        tp = sum(v.example.label == kind and v.found == kind for v in verdicts)
        fp = sum(v.example.label != kind and v.found == kind for v in verdicts)
        fn = sum(v.example.label == kind and v.found != kind for v in verdicts)
        n = tp + fn
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / n if n else float("nan")
        tp_, tr_ = TARGETS[kind]
        ok = "met" if p >= tp_ and r >= tr_ else "MISSED"
        lines.append(f"{kind:22} {n:6d} {p:9.2f} {r:6.2f}  {tp_}/{tr_} {ok}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write", action="store_true", help="refit on every family and write the model"
    )
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--no-recipes", action="store_true", help="leave lrlab's recipe corpus out")
    args = parser.parse_args()
    ex = examples(include_recipes=not args.no_recipes)
    t0 = time.time()
    x = np.array([features_of(e) for e in ex])
    families = len({e.family for e in ex})
    print(f"{len(ex)} curves, {families} families, features in {time.time() - t0:.1f}s")
    print(dict(Counter(e.label for e in ex)))
    if args.write:
        model = fit(ex, x)
        MODEL_PATH.write_text(json.dumps(model.to_json(), separators=(",", ":")))
        print(f"wrote {MODEL_PATH}")
        return
    verdicts = leave_one_family_out(ex, x, progress=lambda f: print(f"  judged {f}", flush=True))
    new = [v for v in verdicts if not v.example.family.startswith("lrlab_")]
    for line in report(new, "Leave-one-family-out, the family corpus (headline)"):
        print(line)
    for line in report(verdicts, "Leave-one-family-out, every family incl. lrlab's recipe tasks"):
        print(line)
    by_family = Counter(v.example.family for v in verdicts)
    right = Counter(v.example.family for v in verdicts if v.found == v.example.label)
    print("per family: " + ", ".join(f"{f} {right[f]}/{n}" for f, n in sorted(by_family.items())))
    if args.misses:
        for v in verdicts:
            if v.found != v.example.label:
                print(f"  miss {v.example.name}: {v.example.label} -> {v.found}")


if __name__ == "__main__":
    main()
