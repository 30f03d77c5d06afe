"""Vanishing and exploding gradients judged from per-layer norms, on real torch runs."""

from __future__ import annotations

import numpy as np

from services.analyzer import RunContext, diagnose
from services.analyzer.curves import Curves
from services.analyzer.rule_view import rule_findings
from services.analyzer.rules_layers import INPUT_ABOVE_DECADES, VANISH_DECADES
from tests.support.torch_runs import Series, train_mlp, without_layers


def test_a_deep_sigmoid_net_with_small_init_has_vanishing_gradients() -> None:
    series = train_mlp(depth=6, activation="sigmoid", init_scale=0.5, lr=0.1, steps=300)
    ctx = RunContext(lr=0.1, optimizer="sgd", batch_size=32, total_steps=300)
    gap = Curves(series, ctx).layers
    assert gap is not None and (gap.first, gap.last) == ("grad_norm/00.0", "grad_norm/06.12")
    assert gap.late <= -VANISH_DECADES  # the first layer orders of magnitude below the last

    found = {f.kind: f for f in diagnose(series, ctx).findings}
    vanishing = found["vanishing_gradients"]
    assert vanishing.evidence["metric"] == "grad_norm/00.0"
    assert vanishing.evidence["layer_gap_decades_last"] == gap.late
    assert "optimizer.lr" not in vanishing.changes  # a higher lr is not the cure
    for cure in ("initialize", "normalization", "residual", "ReLU"):
        assert cure in vanishing.recommendation
    # The global norm alone (dominated by the last layer) does not show it.
    assert "vanishing_gradients" not in {
        f.kind for f in diagnose(without_layers(series), ctx).findings
    }


def test_the_spec_says_which_activation_and_init_to_change() -> None:
    series = train_mlp(depth=6, activation="sigmoid", init_scale=0.5, lr=0.1, steps=300)
    ctx = RunContext(lr=0.1, optimizer="sgd", activation="sigmoid", init_scale=0.5)
    vanishing = {f.kind: f for f in diagnose(series, ctx).findings}["vanishing_gradients"]
    assert vanishing.changes == {"task.activation": "relu", "task.init_scale": 1.0}


def test_a_healthy_relu_net_has_neither_vanishing_nor_exploding_gradients() -> None:
    series = train_mlp(depth=3, activation="relu", lr=0.1, steps=300)
    ctx = RunContext(lr=0.1, optimizer="sgd", batch_size=32, total_steps=300)
    gap = Curves(series, ctx).layers
    assert gap is not None and abs(gap.late) < 1.0 and abs(gap.early) < 1.5
    kinds = {f.kind for f in diagnose(series, ctx).findings}
    assert not kinds & {"vanishing_gradients", "exploding_gradients"}


def test_single_example_batches_are_not_exploding_gradients_when_the_layers_agree() -> None:
    # One example per step: grad_norm jumps 10x from batch to batch, which the global rule
    # takes for spikes; the first layer against the last stays level.
    series = train_mlp(
        depth=2, activation="relu", lr=1e-3, optimizer="adam", batch_size=1, steps=1500, seed=1
    )
    ctx = RunContext(lr=1e-3, optimizer="adam", batch_size=1, total_steps=1500)
    bare = without_layers(series)
    assert "exploding_gradients" in rule_findings(Curves(bare, ctx), ctx)  # the global rule
    assert "exploding_gradients" not in {f.kind for f in diagnose(series, ctx).findings}


def _reverse_growth(steps: int = 2000, seed: int = 0) -> Series:
    """A run whose input-side gradient grows 100x relative to the output side from step
    800 on, with batch noise: the norms a network that amplifies its gradient logs."""
    rng = np.random.default_rng(seed)
    s = np.arange(steps)
    ramp = np.clip((s - 800) / 600, 0, 1)
    last = 0.5 * np.exp(rng.normal(0, 0.3, steps))
    first = 0.3 * last * 10 ** (2.0 * ramp) * np.exp(rng.normal(0, 0.3, steps))
    loss = 2.0 * np.exp(-s / 400) + 0.3 + 0.5 * ramp + rng.normal(0, 0.02, steps)
    every = s % 8 == 0
    return {
        "train_loss": (s.tolist(), loss.tolist()),
        "lr": (s.tolist(), [0.1] * steps),
        "grad_norm": (s.tolist(), np.sqrt(first**2 + last**2).tolist()),
        "grad_norm/00.encoder": (s[every].tolist(), first[every].tolist()),
        "grad_norm/01.head": (s[every].tolist(), last[every].tolist()),
    }


def test_the_input_side_growing_past_the_output_side_is_exploding() -> None:
    ctx = RunContext(lr=0.1, optimizer="sgd", total_steps=2000)
    found = {f.kind: f for f in diagnose(_reverse_growth(), ctx).findings}
    exploding = found["exploding_gradients"]
    assert exploding.evidence["layer_gap_decades_last"] >= INPUT_ABOVE_DECADES
    assert 800 <= (exploding.step or 0) <= 1400
    for cure in ("clip", "normalization", "initialize"):
        assert cure in exploding.recommendation


def test_layer_series_without_an_index_are_not_ordered_and_not_used() -> None:
    series = _reverse_growth()
    series["grad_norm/encoder"] = series.pop("grad_norm/00.encoder")
    series["grad_norm/head"] = series.pop("grad_norm/01.head")
    assert Curves(series, RunContext()).layers is None
