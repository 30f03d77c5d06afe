"""An external run's free-form config becomes what the analyzer knows about the run."""

from __future__ import annotations

from services.tracking.run_config import context_from_config


def test_common_keys_fill_the_context() -> None:
    context = context_from_config(
        {
            "learning_rate": 3e-4,
            "optimizer": "AdamW",
            "batch_size": 64,
            "lr_scheduler": "OneCycleLR",
            "warmup_steps": 100,
            "max_steps": 5000,
        },
        running=True,
        total_steps=None,
    )
    assert context.lr == 3e-4 and context.optimizer == "adamw"
    assert context.batch_size == 64 and context.warmup_steps == 100
    assert context.schedule == "one_cycle" and context.cyclical
    assert context.total_steps == 5000 and context.running


def test_an_optimizer_dict_gives_its_name_and_lr() -> None:
    context = context_from_config(
        {"optimizer": {"name": "sgd", "lr": 0.1}, "scheduler": "CosineAnnealingWarmRestarts"},
        running=False,
        total_steps=800,
    )
    assert (context.optimizer, context.lr) == ("sgd", 0.1)
    assert context.schedule == "cosine_restarts" and context.total_steps == 800


def test_wrong_types_and_nonsense_are_left_unknown() -> None:
    context = context_from_config(
        {"lr": "fast", "batch_size": True, "optimizer": 3, "warmup_steps": -5, "steps": 1.5},
        running=False,
        total_steps=None,
    )
    assert context.lr is None and context.batch_size is None and context.optimizer is None
    assert context.warmup_steps == 0 and context.total_steps is None
    assert context_from_config({}, running=False, total_steps=None).schedule is None


def test_unknown_schedule_names_are_kept_as_given() -> None:
    context = context_from_config({"schedule": "My-Custom"}, running=False, total_steps=None)
    assert context.schedule == "my-custom" and not context.cyclical


def test_momentum_clipping_decay_and_dropout_fill_the_context() -> None:
    context = context_from_config(
        {
            "optimizer": "sgd",
            "momentum": 0.9,
            "grad_clip_norm": 1.0,
            "weight_decay": 5e-4,
            "dropout": 0.1,
        },
        running=False,
        total_steps=None,
    )
    assert context.momentum == 0.9 and context.grad_clip_norm == 1.0 and context.dropout == 0.1
    assert context.weight_decay == 5e-4 and context.weight_decay_path == "optimizer.weight_decay"
    l2 = context_from_config({"l2": 1e-4}, running=False, total_steps=None)
    assert l2.weight_decay == 1e-4 and l2.weight_decay_path == "regularization.l2"
    adamw = context_from_config({"optimizer": "AdamW"}, running=False, total_steps=None)
    assert adamw.weight_decay is None and adamw.weight_decay_path == "optimizer.weight_decay"


def test_a_nested_optimizer_gives_momentum_and_weight_decay() -> None:
    config = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}}
    context = context_from_config(config, running=False, total_steps=None)
    assert (context.optimizer, context.lr, context.momentum) == ("sgd", 0.1, 0.9)
    assert context.weight_decay == 1e-4
    keras = {"optimizer": {"name": "SGD", "learning_rate": 0.01, "clipnorm": 2.0}}
    assert context_from_config(keras, running=False, total_steps=None).grad_clip_norm == 2.0


def test_hugging_face_training_arguments() -> None:
    context = context_from_config(
        {
            "learning_rate": 5e-5,
            "optim": "adamw_torch_fused",
            "weight_decay": 0.01,
            "max_grad_norm": 1.0,
            "per_device_train_batch_size": 16,
            "lr_scheduler_type": "cosine_with_restarts",
            "warmup_steps": 0,  # the default: warmup_ratio decides
            "warmup_ratio": 0.1,
            "max_steps": 1000,
            "num_train_epochs": 3.0,
            "hidden_dropout_prob": 0.1,
        },
        running=True,
        total_steps=None,
    )
    assert context.optimizer == "adamw" and context.lr == 5e-5
    assert context.weight_decay == 0.01 and context.weight_decay_path == "optimizer.weight_decay"
    assert context.grad_clip_norm == 1.0 and context.batch_size == 16
    assert context.schedule == "cosine_restarts" and context.cyclical
    assert context.warmup_steps == 100 and context.total_steps == 1000
    assert context.dropout == 0.1


def test_lightning_clipping_by_value_is_not_a_norm() -> None:
    by_norm = context_from_config({"gradient_clip_val": 0.5}, running=False, total_steps=None)
    assert by_norm.grad_clip_norm == 0.5
    by_value = context_from_config(
        {"gradient_clip_val": 0.5, "gradient_clip_algorithm": "value"},
        running=False,
        total_steps=None,
    )
    assert by_value.grad_clip_norm is None


def test_epochs_count_only_when_the_steps_in_one_are_known() -> None:
    known = context_from_config(
        {"epochs": 5, "steps_per_epoch": 120, "warmup_ratio": 0.05},
        running=False,
        total_steps=None,
    )
    assert known.total_steps == 600 and known.warmup_steps == 30
    unknown = context_from_config(
        {"epochs": 5, "warmup_ratio": 0.05}, running=False, total_steps=None
    )
    assert unknown.total_steps is None and unknown.warmup_steps == 0
    # Once the run ended, its real length stands in for the unknown budget.
    ended = context_from_config({"warmup_ratio": 0.05}, running=False, total_steps=400)
    assert ended.total_steps == 400 and ended.warmup_steps == 20


def test_an_lrlab_like_config_is_read_from_its_sections() -> None:
    context = context_from_config(
        {
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.0},
            "schedule": {"name": "one_cycle", "max_lr": 0.5, "warmup_steps": 50},
            "regularization": {"dropout": 0.2, "grad_clip_norm": 3.0, "l2": 1e-4},
            "budget": {"max_steps": 2000},
        },
        running=False,
        total_steps=None,
    )
    assert context.momentum == 0.0 and context.max_lr == 0.5 and context.warmup_steps == 50
    assert context.dropout == 0.2 and context.grad_clip_norm == 3.0
    assert context.weight_decay == 1e-4 and context.weight_decay_path == "regularization.l2"
    assert context.total_steps == 2000 and context.schedule == "one_cycle"


def test_malformed_values_are_passed_over_for_the_next_key() -> None:
    context = context_from_config(
        {
            "lr": "fast",
            "optimizer": {"name": "sgd", "lr": 0.2, "momentum": "lots"},
            "momentum": 1.5,
            "dropout": True,
            "weight_decay": -1,
            "grad_clip_norm": [1.0],
            "max_grad_norm": 0,  # Hugging Face's "no clipping"
            "warmup_ratio": 2,
            "num_warmup_steps": 10.5,
        },
        running=False,
        total_steps=None,
    )
    assert context.lr == 0.2  # the nested lr, since the top-level one is no number
    assert context.momentum is None and context.dropout is None
    assert context.weight_decay is None and context.grad_clip_norm is None
    assert context.warmup_steps == 0
