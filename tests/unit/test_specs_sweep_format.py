"""Which schema a sweep document holds, told from its top-level keys
(`specs.sweep_format`)."""

from __future__ import annotations

from typing import Any

import pytest

from services.specs import SpecError, SweepSpec
from services.specs.sweep_format import NATIVE_ONLY, WANDB_ONLY, sweep_format
from services.specs.wandb import TOP_LEVEL_KEYS


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        ({"base": {"task": "digits"}, "space": {"optimizer.lr": [0.1]}}, "native"),
        ({"method": "random", "space": {}, "early_stop": {"pruner": "asha"}}, "native"),
        ({"base": {"task": "digits"}, "name": "one job"}, "native"),  # a base, no W&B key
        ({"method": "grid", "parameters": {"lr": {"values": [0.1]}}}, "wandb"),
        ({"base": {"task": "digits"}, "parameters": {}}, "wandb"),  # lrlab's base in W&B
        ({"program": "train.py", "method": "bayes"}, "wandb"),
        ({"method": "grid", "metric": {"name": "val_loss"}}, None),  # shared keys only
        ({"spaces": {}}, None),  # unknown keys say nothing: the default schema names them
        ([{"space": {}}], None),
        ("space", None),
    ],
)
def test_the_keys_say_the_schema(document: Any, schema: str | None) -> None:
    assert sweep_format(document) == schema


def test_keys_of_both_are_ambiguous_and_the_error_says_how_to_choose() -> None:
    with pytest.raises(SpecError) as info:
        sweep_format({"space": {}, "parameters": {}, "run_cap": 3})
    assert info.value.message == (
        "this document has keys of a native sweep spec (space) and of a W&B sweep file "
        "(parameters, run_cap); keep the keys of one, or say which it is with "
        "?format=native or ?format=wandb"
    )


def test_the_key_sets_follow_the_two_schemas() -> None:
    shared = {"name", "description", "method", "metric", "base", "seed", "max_concurrent"}
    assert shared <= set(SweepSpec.model_fields) & TOP_LEVEL_KEYS
    assert {"space", "max_trials", "early_stop", "policy", "notify", "bayes"} <= NATIVE_ONLY
    assert {"parameters", "run_cap", "early_terminate", "program", "command"} <= WANDB_ONLY
    assert not NATIVE_ONLY & WANDB_ONLY
