"""The analyzer's corpora and the classifier fitted on them.

Two corpora: lrlab's recipe corpus in tests/corpus/ (its own tasks, labelled by the recipe
that caused each condition) and the family corpus in tests/corpus_families/ (eleven model
families trained with plain torch loops, labelled by objective checks on references the
analyzer never sees; bench/families). The shipped kind classifier is fitted on both.

How well the analyzer generalizes is measured by leaving whole families out of the fit
(`python -m bench.families.model`, figures in docs/benchmarks.md): a test here can only
check what the committed curves and the committed model say about each other.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest

from bench.corpus.checks import check
from bench.corpus.files import CORPUS_DIR, MAX_POINTS, Curve, load_corpus
from bench.corpus.recipes import HELD_OUT_TASKS
from bench.corpus.score import judge
from bench.families.files import read_all
from bench.families.model import JUDGED, Example, features_of, fit
from bench.families.model import examples as model_examples
from services.analyzer import KINDS, diagnose
from services.analyzer.classifier import default_model


@pytest.fixture(scope="module")
def curves() -> list[Curve]:
    return load_corpus()


def test_every_kind_has_enough_curves_on_several_tasks(curves: list[Curve]) -> None:
    tasks: dict[str, set[str]] = defaultdict(set)
    scored: dict[str, int] = defaultdict(int)
    for c in curves:
        tasks[c.kind].add(c.task)
        scored[c.kind] += c.made
        assert c.kind in c.labels and c.labels <= set(KINDS), c.id
    for kind in (k for k in KINDS if k != "insufficient_data"):  # no recipe has nothing
        assert scored[kind] >= 15, (kind, scored[kind])
        assert len(tasks[kind]) >= 2, (kind, tasks[kind])
        # The held-out half sees each kind on a task the tuning half never did.
        assert tasks[kind] & set(HELD_OUT_TASKS[kind]), (kind, tasks[kind])


def test_curves_are_stored_small_and_reduced(curves: list[Curve]) -> None:
    size = sum(path.stat().st_size for path in CORPUS_DIR.glob("*.json.gz"))
    assert size < 4_000_000
    for c in curves:
        assert {"train_loss", "lr", "grad_norm"} <= set(c.series), c.id
        # A run that diverged before its first evaluation has no val_loss, as in the store.
        assert ("val_loss" in c.series) == (c.steps_run >= c.spec["eval_every"]), c.id
        for steps, values in c.series.values():
            assert len(steps) == len(values) <= MAX_POINTS, c.id
            assert all(b > a for a, b in itertools.pairwise(steps)), c.id


# -- the family corpus and the classifier fitted on both corpora ---------------------------
@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return model_examples()


@pytest.fixture(scope="module")
def features(examples: list[Example]) -> np.ndarray:
    return np.array([features_of(e) for e in examples])


def test_the_family_corpus_has_every_kind_in_several_families() -> None:
    curves = read_all()
    families: dict[str, set[str]] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)
    for c in curves:
        families[c.label].add(c.family)
        count[c.label] += 1
        assert c.label != "ambiguous", c.name  # left out when written
        assert c.label in c.confirmed or (c.label == "healthy" and not c.confirmed), c.name
        assert {"train_loss", "lr", "grad_norm", "val_loss"} <= set(c.series), c.name
    for kind in JUDGED:
        assert count[kind] >= 5, (kind, count[kind])
        assert len(families[kind]) >= 2, (kind, families[kind])
    assert len({c.family for c in curves}) >= 11


@pytest.mark.slow
def test_the_shipped_model_is_the_one_fitted_on_the_committed_corpora(
    examples: list[Example], features: np.ndarray
) -> None:
    # Refitting from the committed curves gives the shipped trees' answers: the model file
    # is what `python -m bench.families.model --write` makes, not a hand-edited one.
    refit = fit(examples, features)
    shipped = default_model()
    for row in features[:: max(1, len(examples) // 60)]:
        a, b = refit.probabilities(row), shipped.probabilities(row)
        assert a.keys() == b.keys()
        assert all(abs(a[k] - b[k]) < 1e-3 for k in a), (a, b)


def test_in_sample_the_analyzer_reproduces_most_labels(examples: list[Example]) -> None:
    # A memory check (these curves were fitted on): the leave-one-family-out figures in
    # docs/benchmarks.md are the ones that say how it generalizes.
    right = sum(diagnose(e.series, e.context).findings[0].kind == e.label for e in examples)
    assert right >= 0.9 * len(examples), f"{right} of {len(examples)}"


# -- the recipes' own sanity check of exploding gradients (no analyzer code) -------------
def _grad_series(values: np.ndarray) -> dict[str, tuple[list[int], list[float]]]:
    return {"grad_norm": (list(range(values.size)), values.tolist())}


def test_exploding_check_wants_more_than_one_hard_batch() -> None:
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(0.0, 0.1, 600))
    one = base.copy()
    one[300] *= 50  # one 50x step: an ordinary hard batch
    assert not check("exploding_gradients", _grad_series(one))[0]
    five = base.copy()
    five[[100, 200, 300, 400, 500]] *= 20  # the same, five separate times
    assert check("exploding_gradients", _grad_series(five))[0]
    held = base * np.where(np.arange(600) >= 400, 12.0, 1.0)  # 12x for a third of the run
    assert check("exploding_gradients", _grad_series(held))[0]
    brief = base * np.where((np.arange(600) >= 400) & (np.arange(600) < 410), 12.0, 1.0)
    assert not check("exploding_gradients", _grad_series(brief))[0]  # 10 of 600 steps
    overflow = base.copy()
    overflow[450:] = np.inf
    made, why = check("exploding_gradients", _grad_series(overflow))
    assert made and "step 450" in why


def test_scoring_with_less_input_checks_its_argument(curves: list[Curve]) -> None:
    vanishing = next(
        c for c in curves if c.made and c.kind == "vanishing_gradients" and c.task == "digits"
    )
    (full,) = judge([vanishing])
    assert full.found == frozenset({"vanishing_gradients"})
    with pytest.raises(ValueError, match="inputs must be one of"):
        judge([vanishing], "everything")
