"""Trial checkpoints: everything needed to resume a trial exactly where it was saved.

One file per trial attempt directory, replaced atomically (write, fsync, rename), so a
worker killed mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

FILENAME = "checkpoint.pt"


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        return self.directory / FILENAME

    def save(self, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {**state, "rng": _capture_rng()}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self) -> dict[str, Any] | None:
        """The last saved state (with the RNGs restored), or None for a fresh start."""
        if not self.path.exists():
            return None
        state: dict[str, Any] = torch.load(self.path, weights_only=False)
        _restore_rng(state.pop("rng"))
        return state


def _capture_rng() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
