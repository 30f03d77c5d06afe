"""The params of the demo task. Torch-free: the API process imports this module."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

# From the defining module: plug-ins load while `services.specs` itself is being imported.
from services.specs.tasks import TaskParams


class QuadraticTask(TaskParams):
    """Fit y = coefficient * x^2 + noise, x ~ U(-1, 1), with a small MLP (a plug-in)."""

    name: Literal["quadratic"] = "quadratic"
    n_samples: int = Field(default=1000, ge=10, le=100_000)
    coefficient: float = 3.0
    noise: float = Field(default=0.1, ge=0)
    hidden: int = Field(default=32, ge=1, le=1024)
