"""Trial checkpoints: everything needed to resume a trial exactly where it was saved.

One file per trial checkpoint directory, replaced atomically (write, fsync, rename), so a
worker killed mid-save leaves the previous checkpoint intact.

`save` serializes the state in the caller, so what is saved is the state at that moment,
and leaves the file work (write, fsync, rename: ~10 ms on a VM disk, against ~1 ms to
serialize a small model) to a background thread, so training goes on meanwhile. Saves
land in order; `close` (or the next `save`) raises if one failed; `close` returns once the
last one is on disk.
"""

from __future__ import annotations

import io
import os
import random
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

FILENAME = "checkpoint.pt"


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    @property
    def path(self) -> Path:
        return self.directory / FILENAME

    def save(self, state: dict[str, Any]) -> None:
        self._raise_failed()
        buffer = io.BytesIO()
        torch.save({**state, "rng": _capture_rng()}, buffer)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="lrlab-checkpoint")
        self._pending.append(self._executor.submit(self._write, buffer.getvalue()))

    def close(self) -> None:
        """Wait until every save is on disk; raises the first write error, if any."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending = []
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None

    def load(self) -> dict[str, Any] | None:
        """The last saved state (with the RNGs restored), or None for a fresh start."""
        if not self.path.exists():
            return None
        state: dict[str, Any] = torch.load(self.path, weights_only=False)
        _restore_rng(state.pop("rng"))
        return state

    def _raise_failed(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()

    def _write(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


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
