"""Checkpoints: a save is the state at that moment, written in the background, on disk by
the time close() returns; a failed write is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.checkpoints import CheckpointStore


def test_a_save_is_the_state_when_it_was_called(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    weights = torch.zeros(3)
    store.save({"weights": weights, "step": 1})
    weights += 1  # training goes on while the file is written
    store.save({"weights": weights, "step": 2})
    store.close()
    state = CheckpointStore(tmp_path / "ckpt").load()
    assert state is not None and state["step"] == 2
    assert torch.equal(state["weights"], torch.ones(3))
    assert not (tmp_path / "ckpt" / "checkpoint.tmp").exists()


def test_the_saved_state_restores_the_rngs(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    torch.manual_seed(5)
    store.save({})
    store.close()
    expected = torch.rand(4)
    torch.manual_seed(6)
    assert store.load() == {}
    assert torch.equal(torch.rand(4), expected)


def test_a_failed_write_is_raised_by_close(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    store = CheckpointStore(blocker)
    store.save({"step": 1})
    with pytest.raises(OSError):
        store.close()


def test_no_checkpoint_means_a_fresh_start(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "none")
    assert store.load() is None
    store.close()  # nothing saved: nothing to wait for
