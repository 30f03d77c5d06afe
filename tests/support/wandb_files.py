"""The W&B sweep files of tests/data/wandb_sweeps and what lrlab must make of each.

valid/: files as teams write them (W&B's documented forms, Hugging Face, torch and
detection recipes' names, nested groups, Launch keys), each with the native space it
reads as, a grid's number of trials, its hyperband brackets and the keys it is warned
about. invalid/: files lrlab must refuse, each with the place in the file and the rule
its 422 names. Distribution bounds are written as W&B defines them: log_uniform's and
q_log_uniform's min and max are natural-log exponents (exp() of them here), the _values
forms take values, inv_log_uniform bounds log(1/X).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["INVALID", "VALID", "WandbFile", "wandb_file"]

FILES = Path(__file__).resolve().parents[1] / "data" / "wandb_sweeps"
E = math.exp


def wandb_file(kind: str, name: str) -> bytes:
    return (FILES / kind / f"{name}.yaml").read_bytes()


def dist(name: str, **args: Any) -> dict[str, Any]:
    return {"distribution": name, **args}


@dataclass(frozen=True)
class WandbFile:
    """What a valid file reads as."""

    method: str
    space: dict[str, dict[str, Any]]  # path -> the native param, as dumped
    trials: int | None = None  # a grid's trials (after run_cap)
    warnings: tuple[str, ...] = ()  # the keys warned about, in order
    max_trials: int | None = None
    metric: dict[str, Any] = field(default_factory=dict)  # over name val_loss, minimize
    brackets: list[int] | None = None  # hyperband's, for trials of `horizon` evaluations
    horizon: int | None = None
    strict: bool | None = None


VALID: dict[str, WandbFile] = {
    "quickstart_random": WandbFile(
        "random",
        {
            "optimizer.lr": dist("uniform", low=0.0001, high=0.1),
            "batch_size": {"values": [16, 32, 64]},
            "budget.epochs": {"values": [5, 10, 15]},
            "optimizer.name": {"values": ["adam", "sgd"]},
        },
        warnings=("base",),
    ),
    "program_grid": WandbFile(
        "grid",
        {
            "optimizer.lr": {"values": [0.1, 0.03, 0.01, 0.003]},
            "optimizer.momentum": {"values": [0.0, 0.9]},
            "batch_size": {"values": [32, 128]},
            "budget.epochs": {"value": 3},
        },
        trials=16,
        warnings=("program",),
    ),
    "bayes_log_exponents": WandbFile(
        "bayes",
        {
            "optimizer.lr": dist("log_uniform", low=E(-9.21), high=E(-2.3)),
            "optimizer.weight_decay": dist("log_uniform", low=E(-13.8), high=E(-4.6)),
            "regularization.dropout": dist("uniform", low=0.0, high=0.5),
        },
        max_trials=30,
        metric={"name": "val_accuracy", "goal": "maximize"},
    ),
    "log_uniform_values": WandbFile(
        "random",
        {
            "optimizer.lr": dist("log_uniform", low=1e-5, high=0.1),
            "optimizer.weight_decay": dist("log_uniform", low=1e-6, high=0.01),
            "batch_size": dist("q_log_uniform", low=16, high=256, q=16),
        },
    ),
    "grid_quantized": WandbFile(
        "grid",
        {
            # arange(16, 128, 16): max itself is not a value, as in W&B's grid
            "batch_size": {"values": [16, 32, 48, 64, 80, 96, 112]},
            "budget.epochs": {"values": [1, 2, 3]},  # int_uniform: both ends included
            "optimizer.lr": {"value": 0.05},
        },
        trials=21,
    ),
    "int_uniform_random": WandbFile(
        "random",
        {
            "seed": dist("int_uniform", low=0, high=9),
            "batch_size": dist("int_uniform", low=8, high=64),
            "schedule.warmup_steps": dist("int_uniform", low=0, high=50),
        },
    ),
    "normal_family": WandbFile(
        "random",
        {
            "optimizer.momentum": dist("normal", mu=0.9, sigma=0.02),
            "optimizer.weight_decay": dist("log_normal", mu=-9.0, sigma=1.0),
            "regularization.dropout": dist("beta", a=2, b=8),
            "batch_size": dist("q_normal", mu=64, sigma=6, q=8),
            "eval_every": dist("q_log_normal", mu=3.0, sigma=0.3, q=5),
            "regularization.l1": dist("q_beta", a=1, b=20, q=0.001),
        },
    ),
    "inv_log_uniform": WandbFile(
        "random",
        {
            "regularization.grad_clip_norm": dist("inv_log_uniform", low=0.1, high=10.0),
            # log(1/X) in [2, 9]: X in [exp(-9), exp(-2)]
            "optimizer.lr": dist("inv_log_uniform", low=E(-9.0), high=E(-2.0)),
        },
    ),
    "hyperband_min_iter": WandbFile(
        "bayes",
        {
            "optimizer.lr": dist("log_uniform", low=0.001, high=1.0),
            "batch_size": {"values": [32, 64]},
        },
        warnings=("program",),
        metric={"name": "val_loss", "goal": "minimize"},
        brackets=[3, 9, 27, 81],
        horizon=100,
        strict=True,
    ),
    "hyperband_max_iter": WandbFile(
        "random",
        {"optimizer.lr": dist("uniform", low=0.001, high=0.5)},
        brackets=[3, 9],
        strict=False,
    ),
    "hyperband_eta2": WandbFile(
        "grid",
        {
            "optimizer.lr": {"values": [0.3, 0.1, 0.03]},
            "optimizer.momentum": {"values": [0.5, 0.9]},
        },
        trials=6,
        brackets=[10, 20, 40],
        strict=True,
    ),
    "nested_optimizer_scheduler": WandbFile(
        "random",
        {
            "optimizer.name": {"values": ["adam", "adamw"]},
            "optimizer.lr": dist("log_uniform", low=0.0001, high=0.01),
            "optimizer.weight_decay": {"values": [0.0, 0.01]},
            "schedule.name": {"values": ["cosine", "one_cycle"]},
            "schedule.warmup_steps": {"values": [0, 20]},
        },
    ),
    "groups_any_name": WandbFile(
        "grid",
        {
            "optimizer.name": {"value": "sgd"},
            "optimizer.lr": {"values": [0.1, 0.01]},
            "optimizer.momentum": {"value": 0.9},
            "batch_size": {"values": [32, 64]},
            "budget.epochs": {"value": 2},
            "task.model": {"values": ["mlp", "cnn"]},
            "regularization.dropout": {"value": 0.1},
            "task.name": {"value": "digits"},
        },
        trials=8,
    ),
    "huggingface_trainer": WandbFile(
        "bayes",
        {
            "optimizer.lr": dist("log_uniform", low=1e-5, high=5e-4),
            "batch_size": {"values": [16, 32]},
            "budget.epochs": {"values": [2, 3]},
            "schedule.warmup_fraction": {"values": [0.0, 0.06, 0.1]},
            "optimizer.weight_decay": {"values": [0.0, 0.01]},
            # constant_with_warmup's own warmup gives way to the swept warmup_ratio
            "schedule.name": {
                "values": ["linear", "cosine", "cosine_restarts", "constant", "linear"]
            },
            "optimizer.betas.0": {"value": 0.9},
            "optimizer.betas.1": {"values": [0.98, 0.999]},
            "optimizer.eps": {"value": 1e-8},
            "regularization.grad_clip_norm": {"value": 1.0},
            "optimizer.name": {"value": "adamw"},
        },
        warnings=("metric.name", "program"),
        metric={"name": "val_loss", "goal": "minimize"},
    ),
    "torch_schedulers": WandbFile(
        "grid",
        {
            "schedule.name": {
                "values": [
                    "step",
                    "exponential",
                    "cosine",
                    "one_cycle",
                    "cyclic",
                    "plateau",
                    "multistep",
                ]
            },
            "optimizer.lr": {"values": [0.1, 0.01]},
            "budget.max_steps": {"value": 300},
        },
        trials=14,
    ),
    "pytorch_mnist_steplr": WandbFile(
        "grid",
        {
            "optimizer.lr": {"values": [1.0, 0.5]},
            "schedule.gamma": {"values": [0.7, 0.9]},
            "schedule.name": {"value": "step"},
            "budget.epochs": {"value": 3},
            "batch_size": {"value": 64},
            "optimizer.name": {"value": "sgd"},
        },
        trials=4,
        warnings=("program", "command"),
    ),
    "weighted_categorical": WandbFile(
        "random",
        {
            "optimizer.name": {
                "values": ["adam", "sgd", "adamw"],
                "probabilities": [0.6, 0.3, 0.1],
            },
            "batch_size": {"values": [32, 64, 128], "probabilities": [0.25, 0.5, 0.25]},
            "optimizer.lr": dist("log_uniform", low=0.0001, high=0.1),
        },
        max_trials=40,
    ),
    "metric_target": WandbFile(
        "random",
        {"optimizer.lr": dist("log_uniform", low=0.001, high=1.0)},
        max_trials=100,
        metric={"name": "val_loss", "goal": "minimize", "target": 0.05},
    ),
    "launch_job": WandbFile(
        "random",
        {
            "optimizer.lr": dist("log_uniform", low=0.0001, high=0.1),
            "batch_size": {"values": [32, 64]},
        },
        warnings=("entity", "project", "job"),
    ),
    "task_parameter": WandbFile(
        "grid",
        {
            "task.name": {"values": ["digits", "regression"]},
            "optimizer.lr": {"values": [0.1, 0.01]},
        },
        trials=4,
        warnings=("program",),
    ),
    "controller_local": WandbFile(
        "grid",
        {"optimizer.lr": {"values": [0.1, 0.05]}},
        trials=2,
        warnings=("controller", "base"),
    ),
    "yolo_hyp": WandbFile(
        "random",
        {
            "optimizer.lr": dist("uniform", low=1e-5, high=0.1),
            "optimizer.momentum": dist("uniform", low=0.6, high=0.98),
            "optimizer.weight_decay": dist("uniform", low=0.0, high=0.001),
            "schedule.warmup_steps": dist("int_uniform", low=0, high=50),
            "batch_size": {"values": [16, 32, 64]},
            "budget.epochs": {"value": 3},
        },
        metric={"name": "val_loss", "goal": "minimize"},
    ),
    "dotted_paths": WandbFile(
        "grid",
        {
            "regularization.l2": {"values": [0.0, 0.0001]},
            "lr_scaling.rule": {"values": ["none", "sqrt"]},
            "optimizer.betas.0": {"value": 0.85},
            "batch_size": {"values": [32, 128]},
        },
        trials=8,
    ),
    "whole_entries": WandbFile(
        "grid",
        {
            "optimizer": {
                "values": [
                    {"name": "adam", "lr": 0.001},
                    {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                ]
            },
            "schedule": {"values": [{"name": "one_cycle", "max_lr": 0.5}, {"name": "cosine"}]},
        },
        trials=4,
    ),
    "bayes_impute": WandbFile(
        "bayes",
        {"optimizer.lr": dist("log_uniform", low=0.001, high=1.0)},
        warnings=("metric.impute", "metric.impute_while_running"),
        metric={"name": "val_loss", "goal": "minimize"},
    ),
    "q_log_uniform_exponents": WandbFile(
        "random",
        {
            "batch_size": dist("q_log_uniform", low=E(2.7726), high=E(6.2383), q=16),
            "schedule.warmup_steps": dist("q_uniform", low=0, high=100, q=10),
        },
    ),
}

# file -> (the place in the file, a fragment of the rule its 422 states)
INVALID: dict[str, tuple[str, str]] = {
    "program_without_task": ("program", "lrlab's server never runs uploaded code"),
    "command_only": ("command", "name one with base: {task: digits} or a task parameter"),
    "probabilities_length": (
        "parameters.optimizer.probabilities",
        "probabilities has 2 entries for 3 values",
    ),
    "probabilities_sum": ("parameters.batch_size.probabilities", "these sum to 0.9"),
    "probabilities_negative": (
        "parameters.batch_size.probabilities[1]",
        "a probability must be >= 0 (got -0.2)",
    ),
    "unknown_scheduler": (
        "parameters.lr_scheduler_type.values[2]",
        "unknown scheduler 'inverse_sqrt'; lrlab reads constant, step,",
    ),
    "unknown_optimizer": ("parameters.optimizer.values[1]", "unknown optimizer 'lamb'"),
    "unknown_leaf_in_group": (
        "parameters.model.parameters.hidden_size",
        "unknown parameter 'model.hidden_size': lrlab understands lr, optimizer, momentum,",
    ),
    "strict_not_boolean": ("early_terminate.strict", "strict is true or false (got 'yes')"),
    "target_not_number": ("metric.target", "valid number"),
    "log_uniform_values_zero": (
        "parameters.learning_rate.min",
        "log_uniform_values needs min > 0",
    ),
    "log_uniform_exponent_overflow": (
        "parameters.weight_decay.max",
        "exp(1000) is out of range",
    ),
    "grid_continuous": ("parameters.learning_rate.distribution", "can only be sampled"),
    "multi_objective": ("metrics", "multi-objective sweeps (metrics) are not supported"),
    "beta1_with_sgd": (
        "parameters.beta1",
        "'beta1' sets optimizer.betas.0, which this sweep's trials do not have",
    ),
    "two_names_one_field": (
        "parameters.learning_rate",
        "learning_rate and lr both set optimizer.lr",
    ),
    "hyperband_no_bracket": ("early_terminate.max_iter", "which leaves no rung"),
    "warmup_twice": ("parameters.warmup_ratio", "both set the warmup"),
}
