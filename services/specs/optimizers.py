"""Optimizer params: one model per `torch.optim` optimizer, defaults as in torch.

Every optimizer has `lr` and `weight_decay`. Only the knobs listed here are accepted; a key
belonging to another optimizer (momentum with adam) is an error, not silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BeforeValidator, Field, model_validator

from services.specs.common import fail
from services.specs.registry import RegistryParams, check_registry, registry_parser

__all__ = [
    "OPTIMIZERS",
    "AdagradParams",
    "AdamParams",
    "AdamWParams",
    "LBFGSParams",
    "Optimizer",
    "OptimizerParams",
    "RMSpropParams",
    "SGDParams",
]

# Adam's betas are decay rates of moving averages: 1 would never forget, so [0, 1).
Beta = Annotated[float, Field(ge=0, lt=1)]


def _pair(value: Any) -> Any:
    # JSON has no tuples: a list of two is the pair (strict models take no list for one).
    return tuple(value) if isinstance(value, list) else value


Betas = Annotated[tuple[Beta, Beta], BeforeValidator(_pair)]
# Momentum is a decay rate too: at 1 and above the velocity grows without bound.
Momentum = Annotated[float, Field(ge=0, lt=1)]


def _lr(default: float) -> Any:
    # Each optimizer has its own torch default lr; the rule and description are shared.
    return Field(default=default, gt=0, description="Learning rate (step size), finite, > 0.")


class OptimizerParams(RegistryParams):
    spec_kind: ClassVar[str] = "optimizer"

    lr: float = _lr(1e-3)
    weight_decay: float = Field(
        default=0.0, ge=0, description="Decoupled (adamw) or L2 (others) weight decay."
    )


class SGDParams(OptimizerParams):
    """Stochastic gradient descent, optionally with (Nesterov) momentum (torch.optim.SGD)."""

    name: Literal["sgd"] = "sgd"
    lr: float = _lr(1e-3)
    momentum: Momentum = 0.0
    # Above 1 the gradient's sign flips in the velocity.
    dampening: float = Field(default=0.0, ge=0, le=1)
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDParams:
        # torch raises the same at construction; failing here tells the user at submit time.
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            fail(
                ("nesterov",),
                "nesterov requires momentum > 0 and dampening = 0 "
                f"(got momentum={self.momentum}, dampening={self.dampening})",
                self.nesterov,
            )
        return self


class AdagradParams(OptimizerParams):
    """Adagrad: per-parameter steps scaled by accumulated squared gradients."""

    name: Literal["adagrad"] = "adagrad"
    lr: float = _lr(1e-2)
    lr_decay: float = Field(default=0.0, ge=0)
    initial_accumulator_value: float = Field(default=0.0, ge=0)
    eps: float = Field(default=1e-10, gt=0)


class RMSpropParams(OptimizerParams):
    """RMSprop: steps scaled by a moving average of squared gradients."""

    name: Literal["rmsprop"] = "rmsprop"
    lr: float = _lr(1e-2)
    alpha: float = Field(default=0.99, ge=0, lt=1, description="Smoothing constant.")
    eps: float = Field(default=1e-8, gt=0)
    momentum: Momentum = 0.0
    centered: bool = False


class AdamParams(OptimizerParams):
    """Adam: adaptive moments; weight_decay is an L2 term added to the gradient."""

    name: Literal["adam"] = "adam"
    lr: float = _lr(1e-3)
    betas: Betas = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    amsgrad: bool = False


class AdamWParams(OptimizerParams):
    """AdamW: Adam with decoupled weight decay (torch's default weight_decay 0.01)."""

    name: Literal["adamw"] = "adamw"
    lr: float = _lr(1e-3)
    weight_decay: float = Field(default=1e-2, ge=0)
    betas: Betas = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    amsgrad: bool = False


class LBFGSParams(OptimizerParams):
    """L-BFGS quasi-Newton; best with batch_size "full". torch's LBFGS has no weight
    decay of its own, so a non-zero weight_decay is applied as an L2 term in the loss."""

    name: Literal["lbfgs"] = "lbfgs"
    lr: float = _lr(1.0)
    max_iter: int = Field(default=20, ge=1, description="Inner iterations per step.")
    history_size: int = Field(default=100, ge=1)
    tolerance_grad: float = Field(default=1e-7, gt=0)
    tolerance_change: float = Field(default=1e-9, gt=0)
    line_search_fn: Literal["strong_wolfe"] | None = None


OPTIMIZERS: dict[str, type[OptimizerParams]] = {
    "sgd": SGDParams,
    "adagrad": AdagradParams,
    "rmsprop": RMSpropParams,
    "adam": AdamParams,
    "adamw": AdamWParams,
    "lbfgs": LBFGSParams,
}

_OptimizerUnion = SGDParams | AdagradParams | RMSpropParams | AdamParams | AdamWParams | LBFGSParams
check_registry(OPTIMIZERS, get_args(_OptimizerUnion))

# A field of this type takes {"name": "adam", ...} or the bare name "adam".
Optimizer = Annotated[
    _OptimizerUnion,
    Field(discriminator="name"),
    BeforeValidator(registry_parser("optimizer", OPTIMIZERS)),
]
