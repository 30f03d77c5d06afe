"""An external run's free-form config becomes what the analyzer knows about the run."""

from __future__ import annotations

from services.run_config import context_from_config


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
