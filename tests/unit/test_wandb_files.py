"""Real-shaped W&B sweep files (tests/data/wandb_sweeps) read as W&B reads them: the exact
native space, a grid's count, each distribution's support and scale, hyperband's
brackets and the warnings; and every invalid file refused at its place with its rule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from services.search import hyperband_rungs, sample
from services.specs import DistributionParam, SweepSpec, expand_grid, spec_errors
from services.specs.documents import load_yaml
from services.specs.early_stop import HyperbandStop
from services.specs.wandb import parse_wandb
from tests.support.wandb_files import FILES, INVALID, VALID, WandbFile, wandb_file

DRAWS = 2000


def read(name: str) -> tuple[SweepSpec, list[str]]:
    warnings: list[str] = []
    spec = parse_wandb(load_yaml(wandb_file("valid", name)), grid_limit=10_000, warnings=warnings)
    return spec, warnings


def test_the_suite_is_every_file_and_big_enough() -> None:
    on_disk = {
        kind: {p.stem for p in (FILES / kind).glob("*.yaml")} for kind in ("valid", "invalid")
    }
    assert on_disk == {"valid": set(VALID), "invalid": set(INVALID)}
    assert len(VALID) >= 20 and len(INVALID) >= 12


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_file_reads_as_wandb_reads_it(name: str) -> None:
    expected: WandbFile = VALID[name]
    spec, warnings = read(name)
    assert spec.method == expected.method
    dumped = {path: param.model_dump(exclude_none=True) for path, param in spec.space.items()}
    assert dumped == expected.space
    assert list(spec.space) == list(expected.space)  # the file's order: the grid's order
    assert spec.max_trials == expected.max_trials
    default = {"name": "val_loss", "goal": "minimize", "target": None}
    assert spec.metric.model_dump() == default | expected.metric
    assert [w.split(": ")[0] for w in warnings] == list(expected.warnings)
    if expected.trials is not None:
        trials = expand_grid(spec, 10_000)
        assert len(trials) == expected.trials
        assert len({repr(sorted(p.items())) for p, _ in trials}) == expected.trials
    if expected.brackets is not None:
        assert isinstance(spec.early_stop, HyperbandStop)
        assert hyperband_rungs(spec.early_stop, expected.horizon) == expected.brackets
        assert spec.early_stop.strict is expected.strict
    else:
        assert spec.early_stop is None


def support_cases() -> list[Any]:
    return [
        pytest.param(name, path, id=f"{name}-{path}")
        for name, expected in sorted(VALID.items())
        for path, param in expected.space.items()
        if "distribution" in param
    ]


def in_log_scale(param: DistributionParam, values: np.ndarray) -> None:
    """Log-uniform on its scale: log X (log 1/X for inv_) flat between the bounds."""
    low, high = float(param.low or 0), float(param.high or 0)
    if param.distribution.endswith("inv_log_uniform"):
        logs, lo, hi = np.log(1 / values), math.log(1 / high), math.log(1 / low)
    else:
        logs, lo, hi = np.log(values), math.log(low), math.log(high)
    assert stats.kstest(logs, "uniform", args=(lo, hi - lo)).statistic < 0.04


@pytest.mark.parametrize(("name", "path"), support_cases())
def test_each_distribution_draws_in_its_wandb_support(name: str, path: str) -> None:
    param = read(name)[0].space[path]
    assert isinstance(param, DistributionParam)
    rng = np.random.default_rng(5)
    drawn = [sample(param, rng) for _ in range(DRAWS)]
    values = np.array(drawn, dtype=float)
    assert np.isfinite(values).all()
    q, kind = param.q, param.distribution
    if q is not None:  # rounded to multiples of q, ints when q is one
        assert all(math.isclose(v / q, round(v / q), abs_tol=1e-6) for v in drawn)
        assert all(isinstance(v, int) for v in drawn) is isinstance(q, int)
    if param.low is not None and param.high is not None:
        slack = q / 2 if q is not None else 0.0
        assert values.min() >= param.low - slack and values.max() <= param.high + slack
    if kind == "int_uniform":  # min and max both included, every integer between
        assert sorted(set(drawn)) == list(range(int(param.low or 0), int(param.high or 0) + 1))
    if kind in ("log_uniform", "inv_log_uniform"):
        in_log_scale(param, values)
    if kind in ("beta", "q_beta"):
        assert values.min() >= 0 and values.max() <= 1


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_trial_a_grid_file_makes_is_a_valid_trial(name: str) -> None:
    spec, _ = read(name)
    if spec.method == "grid":
        for params, trial in expand_grid(spec, 10_000):
            assert set(params) == set(spec.space) and trial.task.name


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_is_refused_at_its_place(name: str) -> None:
    field, fragment = INVALID[name]
    with pytest.raises(ValidationError) as info:
        parse_wandb(load_yaml(wandb_file("invalid", name)), grid_limit=10_000)
    found = [str(error) for error in spec_errors(info.value)]
    assert any(e.startswith(f"{field}: ") and fragment in e for e in found), found


def test_files_are_yaml_as_teams_write_them() -> None:
    # Comments, flow and block styles, exponent floats: read by lrlab's own YAML loader.
    text = Path(FILES / "valid" / "bayes_log_exponents.yaml").read_text()
    assert "#" in text and "distribution: log_uniform" in text
