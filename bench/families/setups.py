"""The setups of the family corpus: a model family on a task with an optimizer, schedule,
batch size and budget, trained at a ladder of learning rates.

A setup does not say what its curves will show: every rung of the ladder is labelled by
the checks in bench/families/label.py, which compare it with the other rungs (lower lrs
for oscillation, much higher ones for slow convergence) and, where a setup names one,
with a bigger model of the same family (underfitting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAMILIES", "SETUPS", "Setup"]

LADDER = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True)
class Setup:
    family: str
    name: str
    task: str
    spec: dict[str, Any]  # model, optimizer, schedule, batch, steps, clip
    base_lr: float  # the ladder is base_lr x LADDER
    bigger: dict[str, Any] | None = None  # a larger model, the reference for underfitting
    fixed: dict[str, Any] | None = None  # same depth, ReLU and default init (vanishing)
    n_train: int | None = None  # a small training split: room to overfit
    ladder: tuple[float, ...] = LADDER
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"


def _s(
    family: str,
    name: str,
    task: str,
    model: dict,
    opt: dict,
    *,
    lr: float,
    steps: int,
    batch: int | str = 32,
    schedule: dict | None = None,
    clip: float | None = None,
    **kw: Any,
) -> Setup:
    spec = {
        "model": model,
        "optimizer": opt,
        "schedule": schedule or {"name": "constant"},
        "batch": batch,
        "steps": steps,
        "clip": clip,
    }
    return Setup(family, name, task, spec, lr, **kw)


SGD, MOM, NEST = (
    {"name": "sgd"},
    {"name": "sgd", "momentum": 0.9},
    {"name": "sgd", "momentum": 0.9, "nesterov": True},
)
ADAM, ADAMW, RMS, ADAG = (
    {"name": "adam"},
    {"name": "adamw"},
    {"name": "rmsprop"},
    {"name": "adagrad"},
)
RMS_MOM = {"name": "rmsprop", "momentum": 0.9}
COS_W = {"name": "cosine", "warmup": 100}
WIDE = {"arch": "mlp", "hidden": [256, 256]}
HIDDEN = {"arch": "mlp", "hidden": [128]}  # the capacity a linear model lacks
EDGE = (1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 9.0)  # fine steps around full-batch GD's stable edge
HIGH = (1.0, 3.0, 10.0, 30.0, 100.0)  # from a good lr to far past it
DOUBLING = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # up to an edge, in steps a bounce shows in


def _relu(depth: int, width: int) -> dict[str, Any]:
    # He init: torch's default Linear init is too small for a deep ReLU stack to train.
    return {"arch": "mlp", "hidden": [width] * depth, "act": "relu", "init": 2**0.5}


# One setup a line: the table reads as a table.
# fmt: off
SETUPS: tuple[Setup, ...] = (
    # ReLU MLPs on tabular, image-as-vector and regression tasks.
    _s("mlp", "digits-sgd", "digits", {"arch": "mlp", "hidden": [64]}, SGD, lr=0.1, steps=1500),
    _s("mlp", "digits-adam-cos", "digits", {"arch": "mlp", "hidden": [128, 64]}, ADAM, lr=1e-3, steps=1200, schedule=COS_W),
    _s("mlp", "blobs-mom-b8", "blobs", {"arch": "mlp", "hidden": [64, 64]}, MOM, lr=0.01, steps=2000, batch=8),
    _s("mlp", "friedman-rms", "friedman", {"arch": "mlp", "hidden": [64, 64]}, RMS, lr=1e-3, steps=1500, batch=64),
    _s("mlp", "teacher-full-gd", "teacher", {"arch": "mlp", "hidden": [64]}, SGD, lr=0.1, steps=3000, batch="full"),
    _s("mlp", "cancer-adagrad", "cancer", {"arch": "mlp", "hidden": [32]}, ADAG, lr=0.01, steps=800, batch=16),
    _s("mlp", "digits-small-overfit", "digits", {"arch": "mlp", "hidden": [512, 512]}, ADAM, lr=1e-3, steps=1500, n_train=120, ladder=(0.01, 0.1, 1.0, 3.0, 10.0)),
    _s("mlp", "teacher-small-overfit", "teacher", {"arch": "mlp", "hidden": [256, 256]}, ADAMW, lr=1e-3, steps=2500, batch="full", n_train=60, ladder=(0.1, 1.0, 3.0)),
    _s("mlp", "blobs-bad-warmup", "blobs", {"arch": "mlp", "hidden": [64]}, ADAM, lr=1e-3, steps=1500, schedule={"name": "cosine", "warmup": 100000}, ladder=(1.0, 3.0, 10.0, 100.0)),
    _s("mlp", "digits-onecycle-b16", "digits", {"arch": "mlp", "hidden": [128]}, MOM, lr=0.05, steps=1200, batch=16, schedule={"name": "one_cycle"}, ladder=(0.01, 0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("mlp", "digits-rms-high", "digits", {"arch": "mlp", "hidden": [128]}, RMS, lr=1e-3, steps=1000, ladder=(0.3, 1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("mlp", "friedman-adam-high", "friedman", {"arch": "mlp", "hidden": [64, 64]}, ADAM, lr=1e-3, steps=1200, ladder=(1.0, 3.0, 10.0, 30.0, 100.0, 300.0)),
    _s("mlp", "teacher-gd-edge", "teacher", {"arch": "mlp", "hidden": [64]}, SGD, lr=0.3, steps=2000, batch="full", ladder=(0.3, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0)),
    _s("mlp", "friedman-small-overfit", "friedman", {"arch": "mlp", "hidden": [256, 256]}, MOM, lr=0.01, steps=2500, batch="full", n_train=80, ladder=(0.1, 0.3, 1.0, 3.0)),
    _s("mlp", "cancer-small-overfit", "cancer", {"arch": "mlp", "hidden": [256, 256]}, SGD, lr=0.05, steps=2000, batch=8, n_train=60, ladder=(0.1, 1.0, 3.0)),
    # Deep tanh / sigmoid stacks: small init loses the gradient on the way back.
    _s("deep_tanh", "digits-small-init", "digits", {"arch": "mlp", "hidden": [64] * 10, "act": "tanh", "init": 0.3}, SGD, lr=0.1, steps=1500, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(10, 64)),
    _s("deep_tanh", "blobs-default", "blobs", {"arch": "mlp", "hidden": [64] * 6, "act": "tanh"}, MOM, lr=0.01, steps=1500),
    _s("deep_tanh", "friedman-small-init-adam", "friedman", {"arch": "mlp", "hidden": [48] * 12, "act": "tanh", "init": 0.2}, ADAM, lr=1e-3, steps=1200, ladder=(0.1, 1.0, 3.0), fixed=_relu(12, 48)),
    _s("deep_tanh", "teacher-xavier-sgd", "teacher", {"arch": "mlp", "hidden": [64] * 5, "act": "tanh", "init": 1.0}, SGD, lr=0.05, steps=2500, batch=64),
    _s("deep_sigmoid", "digits-sig", "digits", {"arch": "mlp", "hidden": [64] * 8, "act": "sigmoid", "init": 1.0}, SGD, lr=0.1, steps=1500, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(8, 64)),
    _s("deep_sigmoid", "blobs-sig-small", "blobs", {"arch": "mlp", "hidden": [64] * 10, "act": "sigmoid", "init": 0.5}, MOM, lr=0.01, steps=1500, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(10, 64)),
    _s("deep_sigmoid", "cancer-sig-shallow", "cancer", {"arch": "mlp", "hidden": [32, 32], "act": "sigmoid"}, ADAM, lr=3e-3, steps=1000, batch=32),
    _s("deep_sigmoid", "friedman-sig-rms", "friedman", {"arch": "mlp", "hidden": [64] * 7, "act": "sigmoid", "init": 1.0}, RMS, lr=1e-3, steps=1500, batch=64, ladder=(0.01, 0.1, 1.0, 3.0), fixed=_relu(7, 64)),
    # Plain recurrent nets: large recurrent weights blow the gradient up through time.
    _s("rnn", "seqsum-default", "seq_sum", {"arch": "rnn", "hidden": 32}, MOM, lr=0.01, steps=1000),
    _s("rnn", "seqsum-radius2", "seq_sum", {"arch": "rnn", "hidden": 32, "recurrent_init": 1.6}, SGD, lr=0.01, steps=1000, ladder=(0.1, 1.0, 3.0)),
    _s("rnn", "seqsum-relu-radius", "seq_sum", {"arch": "rnn", "hidden": 32, "recurrent_init": 1.1, "act": "relu"}, SGD, lr=1e-3, steps=1000, ladder=(0.1, 1.0, 3.0, 10.0)),
    _s("rnn", "majority-relu-clip", "seq_majority", {"arch": "rnn", "hidden": 32, "recurrent_init": 1.05, "act": "relu"}, ADAM, lr=1e-3, steps=1200, clip=1.0, ladder=(0.1, 1.0, 3.0)),
    _s("rnn", "majority-adam", "seq_majority", {"arch": "rnn", "hidden": 32}, ADAM, lr=1e-3, steps=1200, schedule=COS_W),
    _s("rnn", "majority-radius-rms", "seq_majority", {"arch": "rnn", "hidden": 48, "recurrent_init": 1.4}, RMS, lr=1e-3, steps=1000, ladder=(0.1, 1.0, 3.0)),
    # Gated recurrent nets.
    _s("gated", "gru-seqsum-adam", "seq_sum", {"arch": "gru", "hidden": 32}, ADAM, lr=3e-3, steps=1000),
    _s("gated", "lstm-majority-sgd", "seq_majority", {"arch": "lstm", "hidden": 32}, NEST, lr=0.05, steps=1200, batch=64),
    _s("gated", "lstm-seqsum-restarts", "seq_sum", {"arch": "lstm", "hidden": 32}, ADAMW, lr=3e-3, steps=1200, schedule={"name": "restarts"}, ladder=(0.01, 0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("gated", "gru-majority-overfit", "seq_majority", {"arch": "gru", "hidden": 96}, ADAM, lr=3e-3, steps=1500, n_train=64, ladder=(0.1, 1.0, 3.0)),
    _s("gated", "gru-seqsum-rms-high", "seq_sum", {"arch": "gru", "hidden": 32}, RMS, lr=1e-3, steps=800, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    # Small convolutional nets on the digit images.
    _s("cnn", "digits-sgd-step", "digits_image", {"arch": "cnn", "channels": 8}, MOM, lr=0.02, steps=1000, schedule={"name": "step"}),
    _s("cnn", "digits-adam", "digits_image", {"arch": "cnn", "channels": 8}, ADAM, lr=1e-3, steps=800, batch=64),
    _s("cnn", "digits-overfit", "digits_image", {"arch": "cnn", "channels": 16}, ADAM, lr=2e-3, steps=1200, n_train=100, ladder=(0.1, 1.0, 3.0)),
    _s("cnn", "digits-cyclic-b4", "digits_image", {"arch": "cnn", "channels": 8}, SGD, lr=0.02, steps=1500, batch=4, schedule={"name": "cyclic"}, ladder=(0.01, 0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("cnn", "digits-mom-high", "digits_image", {"arch": "cnn", "channels": 8}, MOM, lr=0.01, steps=800, batch=32, ladder=(0.3, 1.0, 3.0, 10.0, 30.0)),
    # A small transformer encoder on sequences.
    _s("transformer", "seqsum-adamw-warm", "seq_sum", {"arch": "transformer", "width": 32, "layers": 2}, ADAMW, lr=1e-3, steps=800, schedule=COS_W),
    _s("transformer", "majority-adam", "seq_majority", {"arch": "transformer", "width": 32, "layers": 2}, ADAM, lr=5e-4, steps=800),
    _s("transformer", "seqsum-sgd-mom", "seq_sum", {"arch": "transformer", "width": 32, "layers": 2}, MOM, lr=0.01, steps=800, batch=64),
    _s("transformer", "majority-adam-high", "seq_majority", {"arch": "transformer", "width": 32, "layers": 2}, ADAM, lr=1e-3, steps=600, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("transformer", "seqsum-small-overfit", "seq_sum", {"arch": "transformer", "width": 48, "layers": 2}, ADAMW, lr=1e-3, steps=1200, n_train=64, batch=16, ladder=(0.3, 1.0, 3.0)),
    # A bottleneck: one or two units in the middle cannot carry the target.
    _s("bottleneck", "digits-width1", "digits", {"arch": "mlp", "hidden": [64, 1, 64]}, ADAM, lr=1e-3, steps=1500, bigger=WIDE, ladder=(0.1, 1.0, 3.0, 10.0)),
    _s("bottleneck", "blobs-width2-sgd", "blobs", {"arch": "mlp", "hidden": [2]}, MOM, lr=0.01, steps=1500, bigger=WIDE, ladder=(0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("bottleneck", "friedman-width1-rms", "friedman", {"arch": "mlp", "hidden": [1]}, RMS, lr=1e-3, steps=1500, batch=64, bigger=WIDE, ladder=(0.01, 0.1, 1.0, 3.0, 10.0)),
    _s("bottleneck", "teacher-width2-full", "teacher", {"arch": "mlp", "hidden": [2]}, ADAM, lr=3e-3, steps=4000, batch="full", bigger=WIDE, ladder=(0.1, 1.0, 3.0)),
    # Linear and logistic models: slow at small lrs, unstable at large, and unable to fit a
    # nonlinear target at any.
    _s("linear", "digits-logistic", "digits", {"arch": "linear"}, SGD, lr=0.1, steps=1500, bigger=HIDDEN),
    _s("linear", "friedman-linear-full", "friedman", {"arch": "linear"}, SGD, lr=0.05, steps=2000, batch="full", bigger=HIDDEN),
    _s("linear", "cancer-logistic-adam", "cancer", {"arch": "linear"}, ADAM, lr=0.01, steps=800, batch=16, bigger=HIDDEN),
    _s("linear", "teacher-linear-rms-mom", "teacher", {"arch": "linear"}, RMS_MOM, lr=1e-3, steps=1500, batch=32, bigger=HIDDEN),
    _s("linear", "blobs-long", "blobs", {"arch": "linear"}, SGD, lr=0.05, steps=10000, batch="full", bigger=HIDDEN, ladder=(0.01, 0.1, 1.0, 10.0, 30.0)),
    # Added after the first leave-one-family-out score, to give the thin kinds (vanishing,
    # oscillation, underfitting) more families and optimizers; labelled by the same checks.
    _s("deep_tanh", "teacher-small-init-mom", "teacher", {"arch": "mlp", "hidden": [48] * 10, "act": "tanh", "init": 0.4}, MOM, lr=0.01, steps=1500, batch=64, ladder=(0.1, 1.0, 3.0), fixed=_relu(10, 48)),
    _s("deep_tanh", "cancer-small-init-nesterov", "cancer", {"arch": "mlp", "hidden": [32] * 12, "act": "tanh", "init": 0.3}, NEST, lr=0.01, steps=1000, batch=16, ladder=(0.1, 1.0, 3.0), fixed=_relu(12, 32)),
    _s("deep_tanh", "blobs-adam-high", "blobs", {"arch": "mlp", "hidden": [64] * 4, "act": "tanh"}, ADAM, lr=1e-3, steps=1000, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("deep_sigmoid", "teacher-sig-full", "teacher", {"arch": "mlp", "hidden": [64] * 8, "act": "sigmoid", "init": 1.0}, SGD, lr=0.1, steps=1500, batch="full", ladder=(0.1, 1.0, 3.0), fixed=_relu(8, 64)),
    _s("deep_sigmoid", "digits-sig-adagrad", "digits", {"arch": "mlp", "hidden": [64] * 9, "act": "sigmoid", "init": 1.0}, ADAG, lr=0.01, steps=1200, ladder=(0.1, 1.0, 3.0), fixed=_relu(9, 64)),
    _s("rnn", "majority-small-radius", "seq_majority", {"arch": "rnn", "hidden": 32, "recurrent_init": 0.3}, SGD, lr=0.05, steps=1000, ladder=(0.1, 1.0, 3.0)),
    _s("gated", "lstm-seqsum-adam-high", "seq_sum", {"arch": "lstm", "hidden": 32}, ADAM, lr=1e-3, steps=800, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("cnn", "digits-adam-high", "digits_image", {"arch": "cnn", "channels": 8}, ADAM, lr=1e-3, steps=600, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("transformer", "seqsum-adam-high", "seq_sum", {"arch": "transformer", "width": 32, "layers": 2}, ADAM, lr=1e-3, steps=600, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("mlp", "cancer-mom-high", "cancer", {"arch": "mlp", "hidden": [64, 64]}, MOM, lr=0.01, steps=800, batch=32, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("bottleneck", "seqsum-gru-width1", "seq_sum", {"arch": "gru", "hidden": 1}, ADAM, lr=3e-3, steps=800, bigger={"arch": "gru", "hidden": 32}, ladder=(0.1, 1.0, 3.0, 10.0)),
    _s("bottleneck", "digits-cnn-width1", "digits_image", {"arch": "mlp", "hidden": [2]}, SGD, lr=0.05, steps=1000, bigger=WIDE, ladder=(0.1, 1.0, 3.0, 10.0)),
    _s("linear", "teacher-linear-adam", "teacher", {"arch": "linear"}, ADAM, lr=3e-3, steps=1500, batch=64, bigger=HIDDEN, ladder=(0.1, 1.0, 3.0, 10.0)),
    # A third batch after the second score: adaptive optimizers far past their lr (where
    # losses swing in place) and bottlenecks on nonlinear targets, in more families.
    _s("mlp", "digits-adam-high", "digits", {"arch": "mlp", "hidden": [128, 64]}, ADAM, lr=1e-3, steps=800, ladder=(3.0, 10.0, 30.0, 100.0, 300.0)),
    _s("mlp", "blobs-rms-high-b16", "blobs", {"arch": "mlp", "hidden": [64, 64]}, RMS, lr=1e-3, steps=800, batch=16, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("cnn", "digits-rms-high", "digits_image", {"arch": "cnn", "channels": 8}, RMS, lr=1e-3, steps=600, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("gated", "lstm-majority-adam-high", "seq_majority", {"arch": "lstm", "hidden": 32}, ADAM, lr=1e-3, steps=600, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("transformer", "majority-adamw-high-cos", "seq_majority", {"arch": "transformer", "width": 32, "layers": 2}, ADAMW, lr=1e-3, steps=600, schedule=COS_W, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("deep_tanh", "cancer-rms-high", "cancer", {"arch": "mlp", "hidden": [32] * 4, "act": "tanh"}, RMS, lr=1e-3, steps=600, batch=32, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("bottleneck", "blobs-width1-adam", "blobs", {"arch": "mlp", "hidden": [64, 1]}, ADAM, lr=3e-3, steps=1200, bigger=WIDE, ladder=(0.3, 1.0, 3.0)),
    _s("bottleneck", "friedman-width2-mom", "friedman", {"arch": "mlp", "hidden": [2]}, MOM, lr=0.01, steps=1200, batch=32, bigger=WIDE, ladder=(0.3, 1.0, 3.0)),
    _s("bottleneck", "blobs-width1-rms-cos", "blobs", {"arch": "mlp", "hidden": [1]}, RMS, lr=1e-3, steps=1200, schedule=COS_W, bigger=WIDE, ladder=(1.0, 3.0, 10.0)),
    _s("linear", "blobs-linear-adam", "blobs", {"arch": "linear"}, ADAM, lr=3e-3, steps=1200, bigger=HIDDEN, ladder=(0.3, 1.0, 3.0)),
    _s("linear", "friedman-linear-rms", "friedman", {"arch": "linear"}, RMS, lr=1e-3, steps=1200, batch=64, bigger=HIDDEN, ladder=(1.0, 3.0, 10.0)),
    # Two more families, added with the third batch: residual MLPs (with and without
    # LayerNorm) and temporal convolutions over sequences.
    _s("residual", "digits-sgd-mom", "digits", {"arch": "residual", "width": 64, "blocks": 4}, MOM, lr=0.02, steps=1000, ladder=(0.01, 0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("residual", "friedman-adamw-cos", "friedman", {"arch": "residual", "width": 64, "blocks": 3}, ADAMW, lr=1e-3, steps=1000, schedule=COS_W, ladder=(0.01, 0.1, 1.0, 10.0, 100.0)),
    _s("residual", "blobs-nonorm-bigint", "blobs", {"arch": "residual", "width": 64, "blocks": 6, "norm": False, "init": 2.0}, SGD, lr=0.01, steps=1000, ladder=(0.1, 0.3, 1.0, 3.0)),
    _s("residual", "cancer-small-overfit", "cancer", {"arch": "residual", "width": 128, "blocks": 3}, ADAM, lr=1e-3, steps=1200, batch=16, n_train=50, ladder=(0.3, 1.0, 3.0)),
    _s("residual", "teacher-width2", "teacher", {"arch": "residual", "width": 2, "blocks": 2}, ADAM, lr=3e-3, steps=1200, batch=64, bigger={"arch": "residual", "width": 64, "blocks": 2}, ladder=(0.3, 1.0, 3.0)),
    _s("residual", "blobs-rms-high", "blobs", {"arch": "residual", "width": 64, "blocks": 3}, RMS, lr=1e-3, steps=800, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    _s("conv1d", "seqsum-adam", "seq_sum", {"arch": "conv1d", "channels": 16}, ADAM, lr=1e-3, steps=800, ladder=(0.001, 0.01, 0.1, 1.0, 10.0, 100.0)),
    _s("conv1d", "majority-sgd-step", "seq_majority", {"arch": "conv1d", "channels": 16}, MOM, lr=0.01, steps=1000, schedule={"name": "step"}, ladder=(0.01, 0.1, 1.0, 3.0, 10.0, 30.0)),
    _s("conv1d", "majority-small-overfit", "seq_majority", {"arch": "conv1d", "channels": 64}, ADAM, lr=2e-3, steps=1200, n_train=48, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("conv1d", "seqsum-width1", "seq_sum", {"arch": "conv1d", "channels": 1}, ADAM, lr=3e-3, steps=800, bigger={"arch": "conv1d", "channels": 32}, ladder=(0.3, 1.0, 3.0)),
    _s("conv1d", "seqsum-rms-high-b8", "seq_sum", {"arch": "conv1d", "channels": 16}, RMS, lr=1e-3, steps=800, batch=8, ladder=(1.0, 3.0, 10.0, 30.0, 100.0)),
    # A fourth batch, after the residual/conv1d score: momentum SGD and adaptive optimizers
    # past their lr on minibatches in the families with few swinging losses.
    _s("mlp", "friedman-mom-high-b16", "friedman", {"arch": "mlp", "hidden": [64, 64]}, MOM, lr=0.01, steps=800, batch=16, ladder=(1.0, 3.0, 10.0, 30.0)),
    _s("cnn", "digits-mom-high-b16", "digits_image", {"arch": "cnn", "channels": 8}, MOM, lr=0.01, steps=600, batch=16, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("gated", "gru-majority-mom-high", "seq_majority", {"arch": "gru", "hidden": 32}, MOM, lr=0.05, steps=600, ladder=(1.0, 3.0, 10.0, 30.0)),
    _s("transformer", "majority-mom-high", "seq_majority", {"arch": "transformer", "width": 32, "layers": 2}, MOM, lr=0.01, steps=500, ladder=(1.0, 3.0, 10.0, 30.0)),
    _s("conv1d", "majority-adam-high", "seq_majority", {"arch": "conv1d", "channels": 16}, ADAM, lr=1e-3, steps=600, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("residual", "digits-adam-high-b16", "digits", {"arch": "residual", "width": 64, "blocks": 3}, ADAM, lr=1e-3, steps=600, batch=16, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("linear", "blobs-rms-high", "blobs", {"arch": "linear"}, RMS, lr=1e-3, steps=800, bigger=HIDDEN, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("deep_tanh", "teacher-mom-high", "teacher", {"arch": "mlp", "hidden": [64] * 4, "act": "tanh"}, MOM, lr=0.01, steps=800, batch=32, ladder=(1.0, 3.0, 10.0, 30.0)),
    _s("rnn", "seqsum-mom-high", "seq_sum", {"arch": "rnn", "hidden": 32}, MOM, lr=0.01, steps=600, clip=1.0, ladder=(1.0, 3.0, 10.0, 30.0)),
    # A fifth batch, for the kinds still thin after the fourth score: real bounces at a high
    # level (full-batch GD just past its stability edge, momentum, Nesterov, RMSProp with
    # momentum, Adagrad and plain minibatch SGD past their lr), bottlenecks on tasks that
    # need more than a unit or two (pairwise products, the largest of four sums), deep plain
    # stacks with small init beyond MLPs (tanh and sigmoid CNNs, temporal convolutions,
    # stacked GRUs and RNNs, ReLU MLPs), and small training splits on sequence and
    # regression tasks.
    _s("mlp", "blobs-gd-edge", "blobs", {"arch": "mlp", "hidden": [64]}, SGD, lr=0.5, steps=1000, batch="full", ladder=EDGE),
    _s("mlp", "digits-gd-edge", "digits", {"arch": "mlp", "hidden": [128]}, SGD, lr=0.5, steps=1000, batch="full", ladder=EDGE),
    _s("mlp", "cancer-nesterov-high-b16", "cancer", {"arch": "mlp", "hidden": [64]}, NEST, lr=0.01, steps=600, batch=16, ladder=HIGH),
    _s("mlp", "interact-rms-mom-high", "interact", {"arch": "mlp", "hidden": [64, 64]}, RMS_MOM, lr=1e-3, steps=800, ladder=HIGH),
    _s("mlp", "interact-width2", "interact", {"arch": "mlp", "hidden": [2]}, ADAM, lr=3e-3, steps=1200, bigger=WIDE, ladder=(0.3, 1.0, 3.0)),
    _s("mlp", "digits-deep-relu-small-init", "digits", {"arch": "mlp", "hidden": [64] * 12, "init": 0.5}, SGD, lr=0.1, steps=1000, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(12, 64)),
    _s("mlp", "blobs-deep-relu-small-init-mom", "blobs", {"arch": "mlp", "hidden": [64] * 10, "init": 0.6}, MOM, lr=0.01, steps=1000, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(10, 64)),
    _s("mlp", "interact-small-overfit", "interact", {"arch": "mlp", "hidden": [256, 256]}, ADAM, lr=1e-3, steps=1500, n_train=100, ladder=(0.3, 1.0, 3.0)),
    _s("deep_tanh", "friedman-gd-edge", "friedman", {"arch": "mlp", "hidden": [64, 64], "act": "tanh"}, SGD, lr=0.5, steps=1000, batch="full", ladder=EDGE),
    _s("deep_tanh", "interact-width2", "interact", {"arch": "mlp", "hidden": [2] * 4, "act": "tanh"}, ADAM, lr=3e-3, steps=1200, bigger={"arch": "mlp", "hidden": [64] * 4, "act": "tanh"}, ladder=(0.3, 1.0, 3.0)),
    _s("deep_tanh", "interact-small-init-sgd", "interact", {"arch": "mlp", "hidden": [48] * 10, "act": "tanh", "init": 0.3}, SGD, lr=0.05, steps=1000, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(10, 48)),
    _s("deep_tanh", "friedman-small-overfit", "friedman", {"arch": "mlp", "hidden": [128] * 3, "act": "tanh"}, ADAM, lr=1e-3, steps=1500, n_train=80, ladder=(0.3, 1.0, 3.0)),
    _s("deep_sigmoid", "blobs-sig-adam-high", "blobs", {"arch": "mlp", "hidden": [64, 64], "act": "sigmoid"}, ADAM, lr=1e-3, steps=800, ladder=HIGH),
    _s("deep_sigmoid", "blobs-sig-width2", "blobs", {"arch": "mlp", "hidden": [2, 2], "act": "sigmoid"}, ADAM, lr=3e-3, steps=1200, bigger={"arch": "mlp", "hidden": [64, 64], "act": "sigmoid"}, ladder=(0.3, 1.0, 3.0)),
    _s("deep_sigmoid", "interact-sig-nesterov", "interact", {"arch": "mlp", "hidden": [48] * 8, "act": "sigmoid", "init": 1.0}, NEST, lr=0.01, steps=1000, ladder=(0.1, 1.0, 3.0, 10.0), fixed=_relu(8, 48)),
    _s("deep_sigmoid", "friedman-sig-small-overfit", "friedman", {"arch": "mlp", "hidden": [128, 128], "act": "sigmoid"}, ADAM, lr=3e-3, steps=1500, n_train=80, ladder=(0.3, 1.0, 3.0)),
    _s("cnn", "digits-sgd-high-b8", "digits_image", {"arch": "cnn", "channels": 8}, SGD, lr=0.01, steps=600, batch=8, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("cnn", "digits-adagrad-high", "digits_image", {"arch": "cnn", "channels": 8}, ADAG, lr=0.01, steps=600, ladder=HIGH),
    _s("cnn", "digits-channels1", "digits_image", {"arch": "cnn", "channels": 1}, ADAM, lr=3e-3, steps=1000, bigger={"arch": "cnn", "channels": 16}, ladder=(0.3, 1.0, 3.0)),
    _s("cnn", "digits-tanh-deep-small-init", "digits_image", {"arch": "cnn", "channels": 8, "depth": 6, "act": "tanh", "init": 0.3}, MOM, lr=0.01, steps=800, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "cnn", "channels": 8, "depth": 6, "init": 2**0.5}),
    _s("cnn", "digits-sigmoid-deep", "digits_image", {"arch": "cnn", "channels": 8, "depth": 5, "act": "sigmoid", "init": 1.0}, SGD, lr=0.1, steps=800, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "cnn", "channels": 8, "depth": 5, "init": 2**0.5}),
    _s("cnn", "digits-small-overfit-mom", "digits_image", {"arch": "cnn", "channels": 16}, MOM, lr=0.01, steps=1200, batch=16, n_train=120, ladder=(0.3, 1.0, 3.0)),
    _s("residual", "friedman-nesterov-high", "friedman", {"arch": "residual", "width": 64, "blocks": 3}, NEST, lr=0.01, steps=600, ladder=HIGH),
    _s("residual", "interact-width1", "interact", {"arch": "residual", "width": 1, "blocks": 2}, ADAM, lr=3e-3, steps=1200, bigger={"arch": "residual", "width": 64, "blocks": 2}, ladder=(0.3, 1.0, 3.0)),
    _s("residual", "friedman-small-overfit-adam", "friedman", {"arch": "residual", "width": 128, "blocks": 2}, ADAM, lr=1e-3, steps=1500, n_train=100, ladder=(0.3, 1.0, 3.0)),
    _s("conv1d", "argmax-rms-mom-high", "seq_argmax", {"arch": "conv1d", "channels": 16}, RMS_MOM, lr=1e-3, steps=600, ladder=HIGH),
    _s("conv1d", "argmax-width1", "seq_argmax", {"arch": "conv1d", "channels": 1}, ADAM, lr=3e-3, steps=1000, bigger={"arch": "conv1d", "channels": 32}, ladder=(0.3, 1.0, 3.0)),
    _s("conv1d", "seqsum-tanh-deep-small-init", "seq_sum", {"arch": "conv1d", "channels": 16, "depth": 6, "act": "tanh", "init": 0.3}, MOM, lr=0.01, steps=800, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "conv1d", "channels": 16, "depth": 6, "init": 2**0.5}),
    _s("conv1d", "seqsum-small-overfit", "seq_sum", {"arch": "conv1d", "channels": 64}, ADAM, lr=2e-3, steps=1200, n_train=64, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("gated", "gru-argmax-adam-high", "seq_argmax", {"arch": "gru", "hidden": 32}, ADAM, lr=1e-3, steps=600, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("gated", "gru-argmax-width1", "seq_argmax", {"arch": "gru", "hidden": 1}, ADAM, lr=3e-3, steps=800, bigger={"arch": "gru", "hidden": 32}, ladder=(0.3, 1.0, 3.0)),
    _s("gated", "gru-stack-small-init", "seq_majority", {"arch": "gru", "hidden": 32, "layers": 4, "init": 0.3}, MOM, lr=0.01, steps=600, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "gru", "hidden": 32, "layers": 4}),
    _s("gated", "lstm-seqsum-small-overfit", "seq_sum", {"arch": "lstm", "hidden": 64}, ADAM, lr=3e-3, steps=1200, n_train=80, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("rnn", "majority-rms-high", "seq_majority", {"arch": "rnn", "hidden": 32}, RMS, lr=1e-3, steps=600, ladder=HIGH),
    _s("rnn", "argmax-width1", "seq_argmax", {"arch": "rnn", "hidden": 1}, RMS, lr=3e-3, steps=800, bigger={"arch": "rnn", "hidden": 32}, ladder=(0.3, 1.0, 3.0)),
    _s("rnn", "seqsum-stack-small-init", "seq_sum", {"arch": "rnn", "hidden": 32, "layers": 5, "init": 0.3}, SGD, lr=0.05, steps=600, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "rnn", "hidden": 32, "layers": 5}),
    _s("rnn", "majority-small-overfit", "seq_majority", {"arch": "rnn", "hidden": 64}, ADAM, lr=1e-3, steps=1200, n_train=64, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("transformer", "argmax-adamw-high", "seq_argmax", {"arch": "transformer", "width": 32, "layers": 2}, ADAMW, lr=1e-3, steps=500, ladder=(3.0, 10.0, 30.0, 100.0)),
    _s("transformer", "argmax-width2", "seq_argmax", {"arch": "transformer", "width": 2, "layers": 1}, ADAM, lr=3e-3, steps=800, bigger={"arch": "transformer", "width": 32, "layers": 1}, ladder=(0.3, 1.0, 3.0)),
    _s("transformer", "argmax-small-overfit", "seq_argmax", {"arch": "transformer", "width": 48, "layers": 2}, ADAM, lr=1e-3, steps=1000, n_train=96, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("bottleneck", "interact-width1-mom", "interact", {"arch": "mlp", "hidden": [64, 1, 64]}, MOM, lr=0.01, steps=1200, bigger=WIDE, ladder=(0.3, 1.0, 3.0)),
    _s("linear", "interact-linear-sgd", "interact", {"arch": "linear"}, SGD, lr=0.01, steps=1000, bigger=HIDDEN, ladder=(0.1, 1.0, 3.0, 10.0)),
    _s("linear", "digits-logistic-sgd-high", "digits", {"arch": "linear"}, SGD, lr=0.1, steps=800, batch=16, bigger=HIDDEN, ladder=HIGH),
    _s("linear", "digits-small-logistic", "digits", {"arch": "linear"}, ADAM, lr=1e-2, steps=1500, n_train=60, ladder=(0.3, 1.0, 3.0)),
    # Its second half, after the first half's labels (oscillation was confirmed 3 times in
    # 173 rungs, overfitting of a tabular regression never): plain and momentum SGD on
    # minibatches at lrs a factor of two apart up to their edge, where the loss bounces at
    # a level a lower lr gets well under; small splits of regression tasks whose noise is
    # near the target's own spread; deeper stacks, smaller init, for the recurrent nets.
    _s("mlp", "friedman-sgd-edge-b16", "friedman", {"arch": "mlp", "hidden": [64, 64]}, SGD, lr=0.02, steps=600, batch=16, ladder=DOUBLING),
    _s("mlp", "teacher-sgd-edge-b8", "teacher", {"arch": "mlp", "hidden": [64]}, SGD, lr=0.02, steps=600, batch=8, ladder=DOUBLING),
    _s("mlp", "interact-sgd-edge-b16", "interact", {"arch": "mlp", "hidden": [64, 64]}, SGD, lr=0.01, steps=600, batch=16, ladder=DOUBLING),
    _s("mlp", "friedman-noisy-small-overfit", "friedman_noisy", {"arch": "mlp", "hidden": [256, 256]}, ADAM, lr=1e-3, steps=1000, n_train=100, ladder=(0.3, 1.0, 3.0)),
    _s("deep_tanh", "friedman-sgd-edge-b16", "friedman", {"arch": "mlp", "hidden": [64] * 3, "act": "tanh"}, SGD, lr=0.02, steps=600, batch=16, ladder=DOUBLING),
    _s("deep_tanh", "friedman-noisy-overfit-mom", "friedman_noisy", {"arch": "mlp", "hidden": [128] * 3, "act": "tanh"}, MOM, lr=0.01, steps=1000, batch=16, n_train=100, ladder=(0.3, 1.0, 3.0)),
    _s("deep_sigmoid", "friedman-sgd-edge-b16", "friedman", {"arch": "mlp", "hidden": [64, 64], "act": "sigmoid"}, SGD, lr=0.05, steps=600, batch=16, ladder=DOUBLING),
    _s("deep_sigmoid", "friedman-noisy-overfit", "friedman_noisy", {"arch": "mlp", "hidden": [128, 128], "act": "sigmoid"}, ADAM, lr=3e-3, steps=1000, n_train=100, ladder=(0.3, 1.0, 3.0)),
    _s("cnn", "digits-nesterov-edge", "digits_image", {"arch": "cnn", "channels": 8}, NEST, lr=0.01, steps=600, ladder=DOUBLING),
    _s("residual", "friedman-sgd-edge-b16", "friedman", {"arch": "residual", "width": 64, "blocks": 2}, SGD, lr=0.01, steps=600, batch=16, ladder=DOUBLING),
    _s("residual", "friedman-noisy-overfit", "friedman_noisy", {"arch": "residual", "width": 128, "blocks": 2}, ADAM, lr=1e-3, steps=1000, n_train=150, ladder=(0.3, 1.0, 3.0)),
    _s("conv1d", "seqsum-sgd-edge-b16", "seq_sum", {"arch": "conv1d", "channels": 16}, SGD, lr=0.01, steps=600, batch=16, ladder=DOUBLING),
    _s("conv1d", "seqsum-noisy-overfit", "seq_sum_noisy", {"arch": "conv1d", "channels": 64}, ADAM, lr=2e-3, steps=1000, n_train=100, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("gated", "gru-seqsum-sgd-edge-b16", "seq_sum", {"arch": "gru", "hidden": 32}, SGD, lr=0.05, steps=600, batch=16, ladder=DOUBLING),
    _s("gated", "gru-seqsum-noisy-overfit", "seq_sum_noisy", {"arch": "gru", "hidden": 64}, ADAM, lr=3e-3, steps=1000, n_train=100, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("gated", "gru-stack6-small-init", "seq_sum", {"arch": "gru", "hidden": 16, "layers": 6, "init": 0.15}, MOM, lr=0.01, steps=500, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "gru", "hidden": 16, "layers": 6}),
    _s("rnn", "seqsum-sgd-edge-clip", "seq_sum", {"arch": "rnn", "hidden": 32}, SGD, lr=0.02, steps=600, batch=16, clip=1.0, ladder=DOUBLING),
    _s("rnn", "seqsum-noisy-overfit", "seq_sum_noisy", {"arch": "rnn", "hidden": 64}, RMS, lr=1e-3, steps=1000, n_train=100, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("rnn", "seqsum-stack6-small-init", "seq_sum", {"arch": "rnn", "hidden": 32, "layers": 6, "init": 0.15}, SGD, lr=0.05, steps=600, ladder=(0.1, 1.0, 3.0, 10.0), fixed={"arch": "rnn", "hidden": 32, "layers": 6}),
    _s("transformer", "seqsum-mom-edge", "seq_sum", {"arch": "transformer", "width": 32, "layers": 2}, MOM, lr=0.003, steps=500, ladder=DOUBLING),
    _s("transformer", "seqsum-noisy-overfit", "seq_sum_noisy", {"arch": "transformer", "width": 32, "layers": 2}, ADAMW, lr=1e-3, steps=800, n_train=100, batch=16, ladder=(0.3, 1.0, 3.0)),
    _s("linear", "friedman-sgd-edge-b8", "friedman", {"arch": "linear"}, SGD, lr=0.03, steps=600, batch=8, bigger=HIDDEN, ladder=DOUBLING),
    # And a last part for oscillation alone (12 confirmed in the 277 rungs above, most where
    # a classification loss or a clipped one stalls rather than blows up): momentum,
    # Nesterov and adaptive optimizers on classification at lrs a factor of two apart.
    _s("mlp", "blobs-nesterov-edge-b16", "blobs", {"arch": "mlp", "hidden": [64, 64]}, NEST, lr=0.02, steps=500, batch=16, ladder=DOUBLING),
    _s("mlp", "digits-adam-edge", "digits", {"arch": "mlp", "hidden": [128]}, ADAM, lr=3e-3, steps=500, ladder=DOUBLING),
    _s("deep_tanh", "blobs-rms-mom-edge", "blobs", {"arch": "mlp", "hidden": [64] * 3, "act": "tanh"}, RMS_MOM, lr=1e-3, steps=500, ladder=DOUBLING),
    _s("deep_sigmoid", "digits-sig-mom-edge", "digits", {"arch": "mlp", "hidden": [64, 64], "act": "sigmoid"}, MOM, lr=0.1, steps=500, ladder=DOUBLING),
    _s("cnn", "digits-adam-edge-b16", "digits_image", {"arch": "cnn", "channels": 8}, ADAM, lr=3e-3, steps=500, batch=16, ladder=DOUBLING),
    _s("residual", "blobs-nesterov-edge", "blobs", {"arch": "residual", "width": 64, "blocks": 2}, NEST, lr=0.02, steps=500, ladder=DOUBLING),
    _s("conv1d", "majority-rms-mom-edge", "seq_majority", {"arch": "conv1d", "channels": 16}, RMS_MOM, lr=1e-3, steps=500, ladder=DOUBLING),
    _s("gated", "lstm-argmax-rms-edge", "seq_argmax", {"arch": "lstm", "hidden": 32}, RMS, lr=3e-3, steps=500, ladder=DOUBLING),
    _s("rnn", "argmax-adam-edge-clip", "seq_argmax", {"arch": "rnn", "hidden": 32}, ADAM, lr=3e-3, steps=500, clip=1.0, ladder=DOUBLING),
    _s("transformer", "argmax-nesterov-edge", "seq_argmax", {"arch": "transformer", "width": 32, "layers": 2}, NEST, lr=0.01, steps=400, ladder=DOUBLING),
    _s("linear", "blobs-nesterov-edge-b16", "blobs", {"arch": "linear"}, NEST, lr=0.05, steps=500, batch=16, bigger=HIDDEN, ladder=DOUBLING),
)
# fmt: on

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(s.family for s in SETUPS))
