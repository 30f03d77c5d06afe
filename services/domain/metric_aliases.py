"""Other names for the series lrlab's analysis reads: what frameworks log them as.

lrlab's own workers log `train_loss`, `val_loss`, `val_accuracy`, `lr` and `grad_norm`;
Hugging Face's Trainer, Lightning, Keras and W&B users log the same series under their own
names. External runs are read through this table (services/tracking/metric_names.py), and
a W&B sweep file's `metric.name` is read through it too. docs/metric-names.md is the table
for users; a unit test keeps the two in step.
"""

from __future__ import annotations

__all__ = ["ALIASES", "canonical_name"]

# torch.optim classes, as PyTorch Lightning's LearningRateMonitor names their lr series
# (`lr-Adam`; `lr-Adam/pg1` for the first of several parameter groups).
_TORCH_OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "ASGD",
    "Rprop",
    "LBFGS",
)

# canonical name -> other names for the same series, first choice first. Per-step names
# come before per-epoch aggregates (`*_epoch`): an epoch mean hides the spikes and the
# first non-finite step the rules look for, so it is read only when nothing finer is.
ALIASES: dict[str, tuple[str, ...]] = {
    "train_loss": (
        "loss",  # Hugging Face Trainer, Keras: a bare `loss` is the training loss
        "train/loss",  # the Trainer's W&B form, and a common W&B name
        "train_loss_step",  # Lightning, self.log("train_loss", on_step=True, on_epoch=True)
        "train/loss_step",
        "training_loss",
        "train_loss_epoch",  # Lightning's epoch mean: a fallback
        "train/loss_epoch",
    ),
    "val_loss": (
        "eval_loss",  # Hugging Face Trainer
        "eval/loss",  # its W&B form
        "val/loss",
        "valid_loss",
        "validation_loss",
        "val_loss_epoch",  # Lightning, on_epoch=True named explicitly
        "val/loss_epoch",
    ),
    "val_accuracy": (
        "val_acc",  # Lightning examples, older Keras
        "eval_accuracy",  # Hugging Face Trainer with an `accuracy` metric
        "eval/accuracy",
        "val/accuracy",
        "val/acc",
        "valid_accuracy",
        "val_acc_epoch",
        "val_accuracy_epoch",
    ),
    "lr": (
        "learning_rate",  # Hugging Face Trainer, Keras
        "train/learning_rate",  # the Trainer's W&B form
        "train/lr",
        *(f"lr-{name}" for name in _TORCH_OPTIMIZERS),  # Lightning's LearningRateMonitor
        *(f"lr-{name}/pg1" for name in _TORCH_OPTIMIZERS),
    ),
    "grad_norm": (
        "train/grad_norm",  # the Trainer's W&B form (`grad_norm` itself is canonical)
        "grad_2.0_norm_total",  # Lightning's grad_norm(module, norm_type=2) utility
        "gradient_norm",
    ),
}


def canonical_name(name: str) -> str | None:
    """The series `name` is another name for, or None when it is none of the aliases."""
    for canonical, aliases in ALIASES.items():
        if name in aliases:
            return canonical
    return None
