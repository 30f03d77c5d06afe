"""lrlab.torch: gradient norms named as the analyzer reads them; torch stays optional."""

from __future__ import annotations

import math
import subprocess
import sys

import lrlab.torch as lrlab_torch
import pytest
import torch
from torch import nn


class Net(nn.Module):
    """Nested modules, a parameter on the model itself, a frozen layer, an unused one."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.frozen = nn.Linear(5, 5)
        self.frozen.requires_grad_(False)
        self.body = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
        self.unused = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.scale * self.body(self.frozen(x))
        return out


def test_grad_norms_are_the_global_and_per_layer_l2_norms() -> None:
    torch.manual_seed(0)
    model = Net()
    model(torch.randn(16, 5)).pow(2).mean().backward()
    norms = lrlab_torch.grad_norms(model)

    def norm(*params: nn.Parameter) -> float:
        return math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None))

    first, second = model.body[0], model.body[2]
    expected = {
        "grad_norm/00.root": norm(model.scale),
        "grad_norm/01.body.0": norm(first.weight, first.bias),
        "grad_norm/02.body.2": norm(second.weight, second.bias),
        "grad_norm/03.unused": 0.0,  # no gradient this step: still listed, in its place
    }
    assert list(norms) == ["grad_norm", *expected]
    for name, value in expected.items():
        assert norms[name] == pytest.approx(value, rel=1e-6), name
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert norms["grad_norm"] == pytest.approx(norm(*trainable), rel=1e-6)
    assert lrlab_torch.layer_names(model) == list(expected)


def test_indices_are_padded_to_one_width_so_names_sort_in_layer_order() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(101)])
    names = lrlab_torch.layer_names(model)
    assert names[0] == "grad_norm/000.0" and names[-1] == "grad_norm/100.100"
    assert sorted(names) == names


@pytest.mark.subprocess
def test_without_torch_the_module_says_what_is_missing() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import lrlab\n"  # the SDK itself imports without torch
        "try:\n"
        "    import lrlab.torch\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert "lrlab.torch needs PyTorch" in out.stdout and "pip install torch" in out.stdout
