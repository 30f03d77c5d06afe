"""Which device an attempt trains on, and the note it leaves when it cannot have a GPU."""

from __future__ import annotations

import pytest
import torch

from workers.attempt import _device


def test_a_cpu_trial_trains_on_cpu_without_a_note() -> None:
    assert _device(0.0) == (torch.device("cpu"), None)


def test_a_gpu_trial_without_cuda_trains_on_cpu_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device, note = _device(0.5)
    assert device == torch.device("cpu")
    assert note is not None
    assert note.startswith("training on CPU: asked for 0.5 GPU but CUDA is not available on ")


def test_a_gpu_trial_with_cuda_trains_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device(1.0) == (torch.device("cuda"), None)
