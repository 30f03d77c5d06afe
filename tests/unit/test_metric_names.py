"""Which logged series an external run's analysis reads: the declared mapping, then the
canonical name, then the alias table in order; and the rules a declared mapping follows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.domain.errors import InvalidInput
from services.domain.metric_aliases import ALIASES
from services.tracking.metric_names import CANONICAL, MetricNames, checked_mapping

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metric-names.md"


def picked(logged: list[str], declared: dict[str, str] | None = None) -> dict[str, str]:
    """canonical -> the logged name it is read from."""
    return MetricNames(declared or {}).pick({name: name for name in logged})


def test_hugging_face_trainer_names_fill_every_series() -> None:
    logged = ["loss", "eval_loss", "eval_accuracy", "learning_rate", "grad_norm", "epoch"]
    assert picked(logged) == {
        "train_loss": "loss",
        "val_loss": "eval_loss",
        "val_accuracy": "eval_accuracy",
        "lr": "learning_rate",
        "grad_norm": "grad_norm",
    }
    wandb_form = ["train/loss", "eval/loss", "eval/accuracy", "train/learning_rate"]
    assert picked([*wandb_form, "train/grad_norm"]) == {
        "train_loss": "train/loss",
        "val_loss": "eval/loss",
        "val_accuracy": "eval/accuracy",
        "lr": "train/learning_rate",
        "grad_norm": "train/grad_norm",
    }


def test_lightning_names_prefer_per_step_series_to_epoch_means() -> None:
    logged = ["train_loss_epoch", "train_loss_step", "val_loss", "val_acc", "lr-AdamW"]
    logged.append("grad_2.0_norm_total")
    assert picked(logged) == {
        "train_loss": "train_loss_step",
        "val_loss": "val_loss",
        "val_accuracy": "val_acc",
        "lr": "lr-AdamW",
        "grad_norm": "grad_2.0_norm_total",
    }
    assert picked(["train_loss_epoch"]) == {"train_loss": "train_loss_epoch"}  # the fallback


def test_keras_training_accuracy_is_not_read_as_validation_accuracy() -> None:
    logged = ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert picked(logged) == {
        "train_loss": "loss",
        "val_loss": "val_loss",
        "val_accuracy": "val_accuracy",
        "lr": "lr",
    }
    assert "val_accuracy" not in picked(["loss", "accuracy"])


def test_the_exact_canonical_name_wins_over_every_alias() -> None:
    logged = ["loss", "train/loss", "train_loss", "learning_rate", "lr", "eval_loss"]
    assert picked(logged) == {"train_loss": "train_loss", "lr": "lr", "val_loss": "eval_loss"}


def test_a_declared_name_wins_and_is_never_read_as_another_series() -> None:
    logged = ["train_loss", "loss", "holdout", "eval_loss", "val_loss"]
    declared = {"holdout": "val_loss", "val_loss": "train_loss"}
    assert picked(logged, declared) == {"train_loss": "val_loss", "val_loss": "holdout"}
    # A declared name the run never logged falls back to the usual names.
    assert picked(["loss"], {"my_loss": "train_loss"}) == {"train_loss": "loss"}


def test_candidates_hold_every_source_once_declared_first() -> None:
    names = MetricNames({"my_loss": "train_loss"})
    candidates = names.candidates
    assert candidates[:2] == ("my_loss", "train_loss")
    assert len(candidates) == len(set(candidates))
    expected = {"my_loss", *CANONICAL, *(a for aliases in ALIASES.values() for a in aliases)}
    assert set(candidates) == expected
    assert MetricNames().sources("lr")[:3] == ("lr", "learning_rate", "train/learning_rate")


def test_no_name_stands_for_two_series() -> None:
    assert set(ALIASES) == set(CANONICAL)
    every = [*CANONICAL, *(a for aliases in ALIASES.values() for a in aliases)]
    assert len(every) == len(set(every))


@pytest.mark.parametrize(
    ("declared", "rule"),
    [
        ({"holdout": "val_los"}, "'val_los', which is not an analysed series"),
        ({"acc": "accuracy"}, "targets are train_loss, val_loss, val_accuracy, lr, grad_norm"),
        ({"a": "train_loss", "b": "train_loss"}, "both 'a' and 'b' to 'train_loss'"),
    ],
)
def test_a_bad_mapping_names_the_field_and_the_rule(declared: dict[str, str], rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        checked_mapping(declared)
    assert caught.value.field == "metric_names" and rule in caught.value.message


def test_a_good_mapping_comes_back_as_given() -> None:
    declared = {"my_loss": "train_loss", "holdout": "val_loss", "lr": "lr"}
    assert checked_mapping(declared) == declared
    assert checked_mapping({}) == {}


def test_the_docs_list_every_alias_in_precedence_order() -> None:
    """docs/metric-names.md has one table row per canonical name: its aliases in order."""
    text = DOCS.read_text()
    for canonical, aliases in ALIASES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{canonical}` |"))
        listed = re.findall(r"`([^`]+)`", row.split("|")[2])
        assert listed == list(aliases), canonical
