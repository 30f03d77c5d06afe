"""Which trial-spec field a W&B sweep parameter's name sets.

A parameter is named by its leaf name, looked up in the table below (`lr`,
`learning_rate`, `beta1`, `num_train_epochs`, ...; case and `-` vs `_` do not matter), or
by a dotted path into the trial spec (`regularization.swa.swa_lr`).

Nested groups (`{parameters: {...}}`) of any name are read by their leaves:
- a group named after a part of the trial spec, or one of its aliases (`optimizer`, `optim`,
  `optimizer_config`; `scheduler`, `lr_scheduler`; `regularization`; `task`; `budget`;
  the table `GROUPS`), puts its leaves there: `optim: {parameters: {name: ..., eps: ...}}`
  is optimizer.name and optimizer.eps. A leaf that is no field there is read by the
  table (`dropout` under `optimizer` is regularization.dropout);
- any other group (`training`, `model`, `hparams`, ...) adds nothing: its leaves are read
  as if they stood at the top.
`optimizer`, `scheduler` and `task` set the entry's name, or the whole entry when their
values are objects (`{name: adam, lr: 0.001}`). A name that none of this makes a field of
the trial spec is an error that lists the names understood.
"""

from __future__ import annotations

import difflib
from typing import Any

from services.specs.sweep import check_path
from services.specs.trial import REGISTRY_FIELDS, TrialSpec

__all__ = ["ALIASES", "GROUPS", "NAMES", "native_path", "understood"]

# trial-spec path -> the parameter names that set it (docs/wandb.md shows this table)
NAMES: dict[str, tuple[str, ...]] = {
    "optimizer.lr": (
        "lr",
        "learning_rate",
        "lr0",
        "init_lr",
        "initial_lr",
        "base_learning_rate",
    ),
    "optimizer.name": (
        "optimizer",
        "optim",
        "opt",
        "optimiser",
        "optimizer_name",
        "optimizer_type",
    ),
    "optimizer.momentum": ("momentum", "mom", "sgd_momentum"),
    "optimizer.weight_decay": ("weight_decay", "wd"),
    "optimizer.nesterov": ("nesterov",),
    "optimizer.eps": ("eps", "epsilon", "adam_epsilon", "adam_eps"),
    "optimizer.betas": ("betas",),
    "optimizer.betas.0": ("beta1", "beta_1", "adam_beta1", "b1"),
    "optimizer.betas.1": ("beta2", "beta_2", "adam_beta2", "b2"),
    "optimizer.amsgrad": ("amsgrad",),
    "batch_size": (
        "batch_size",
        "bs",
        "batch",
        "batchsize",
        "train_batch_size",
        "per_device_train_batch_size",
        "mini_batch_size",
        "minibatch_size",
    ),
    "regularization.dropout": (
        "dropout",
        "dropout_rate",
        "drop_rate",
        "dropout_prob",
        "dropout_p",
        "hidden_dropout_prob",
    ),
    "regularization.l1": ("l1", "l1_reg", "l1_penalty"),
    "regularization.l2": ("l2", "l2_reg", "l2_penalty"),
    "regularization.grad_clip_norm": (
        "grad_clip",
        "grad_clip_norm",
        "clip_grad_norm",
        "max_grad_norm",
        "gradient_clip_val",
        "gradient_clipping",
        "clip_norm",
    ),
    "regularization.grad_clip_value": ("grad_clip_value", "clip_grad_value", "clip_value"),
    "regularization.layer_decay": ("layer_decay", "layerwise_lr_decay", "layer_lr_decay"),
    "budget.epochs": (
        "epochs",
        "num_epochs",
        "n_epochs",
        "max_epochs",
        "num_train_epochs",
        "train_epochs",
    ),
    "budget.max_steps": (
        "max_steps",
        "steps",
        "num_steps",
        "total_steps",
        "train_steps",
        "num_train_steps",
        "training_steps",
        "max_iters",
        "num_iterations",
    ),
    "schedule.name": (
        "scheduler",
        "schedule",
        "lr_scheduler",
        "lr_schedule",
        "lr_scheduler_type",
        "scheduler_type",
        "scheduler_name",
        "lr_policy",
    ),
    "schedule.warmup_steps": ("warmup_steps", "warmup", "num_warmup_steps", "warmup_iters"),
    "schedule.warmup_fraction": (
        "warmup_fraction",
        "warmup_ratio",
        "warmup_proportion",
        "warmup_pct",
    ),
    "schedule.gamma": ("gamma", "lr_gamma", "lr_decay_rate", "decay_rate"),
    "schedule.step_size": ("step_size", "lr_step_size"),
    "schedule.milestones": ("milestones", "lr_milestones"),
    "schedule.max_lr": ("max_lr", "peak_lr", "max_learning_rate"),
    "schedule.T_max": ("t_max",),
    "schedule.T_0": ("t_0",),
    "schedule.eta_min": ("eta_min",),
    "schedule.pct_start": ("pct_start",),
    "eval_every": ("eval_every", "eval_steps", "eval_interval", "evaluation_steps"),
    "seed": ("seed", "random_seed"),
    "task.name": ("task", "dataset", "task_name", "dataset_name"),
    "task.model": ("model", "arch", "architecture"),
}
ALIASES: dict[str, str] = {name: path for path, names in NAMES.items() for name in names}
# group names (and aliases) -> the part of the trial spec they hold
GROUPS: dict[str, str] = {
    **{g: "optimizer" for g in ("optimizer", "optim", "opt", "optimiser")},
    **{g: "optimizer" for g in ("optimizer_config", "optimizer_cfg", "optimizer_params")},
    **{g: "schedule" for g in ("scheduler", "schedule", "lr_scheduler", "lr_schedule")},
    **{g: "schedule" for g in ("scheduler_config", "scheduler_cfg", "scheduler_params")},
    **{g: "regularization" for g in ("regularization", "regularisation")},
    "task": "task",
    "budget": "budget",
}
# Checking a path against any base: each registry field as if swept, so that a key of
# any of its entries counts (the trial's own entry is checked when each trial is built).
_ANY_BASE = TrialSpec.model_validate({"task": "digits"})
_ANY_ENTRY = {f"{field}.name" for field in REGISTRY_FIELDS}


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def _is_field(path: str) -> bool:
    try:
        check_path(path, _ANY_BASE, _ANY_ENTRY)
    except ValueError:
        return False
    return True


def _prefix(groups: list[str]) -> str:
    """The part of the trial spec a chain of groups stands for ('' for none)."""
    path: list[str] = []
    for group in groups:
        native = GROUPS.get(_key(group))
        if native is not None:
            path = [native]  # (re)starts the path, also below a group that adds nothing
        elif path or _is_field(group):
            path.append(group)  # below a part of the spec (regularization.swa), or one
        # else: a group of another name (training, model, ...) adds nothing
    return ".".join(path)


def _whole_entry(path: str, values: list[Any]) -> str:
    # {name: adam, lr: ...} as a value of `optimizer` is the whole optimizer, not its name.
    if path.endswith(".name") and values and all(isinstance(v, dict) for v in values):
        return path.removesuffix(".name")
    return path


def native_path(name: str, values: list[Any]) -> str:
    """The trial-spec path `name` (dotted for nested groups) stands for, unchecked: see
    `understood`. `values` are the parameter's values or constant, if any."""
    *groups, leaf = name.split(".")
    prefix = _prefix(groups)
    if prefix and _is_field(f"{prefix}.{leaf}"):
        return _whole_entry(f"{prefix}.{leaf}", values)
    alias = ALIASES.get(_key(leaf))
    if alias is not None:
        return _whole_entry(alias, values)
    return f"{prefix}.{leaf}" if prefix else leaf


def understood(name: str, path: str, base: TrialSpec, swept: set[str]) -> str | None:
    """None if `path` (what `name` stands for) is a field of the trial spec; otherwise the
    message that says so and lists the names that are understood."""
    try:
        check_path(path, base, swept)
    except ValueError as exc:
        leaf = _key(name.split(".")[-1])
        if ALIASES.get(leaf) == path:  # a name lrlab knows, for a field these trials lack
            return f"{name!r} sets {path}, which this sweep's trials do not have ({exc})"
        close = difflib.get_close_matches(leaf, ALIASES, 1, 0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        known = ", ".join(names[0] for names in NAMES.values())
        return (
            f"unknown parameter {name!r}{hint}: lrlab understands {known} (each with the "
            f"aliases docs/wandb.md lists), and paths into the trial spec ({exc})"
        )
    return None
