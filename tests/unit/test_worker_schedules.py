"""LrSchedule against torch: every schedule's lr series must be exactly what the same torch
schedulers, built by hand here, produce (with and without warmup, with lr scaling, with
layer decay), and a checkpointed schedule must resume on the same series."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as sched

from services.specs import SCHEDULES, TrialSpec
from workers.optim import SCHEDULE_BUILDERS, build_training
from workers.tasks import Task

STEPS = 40
LR = 0.1
EVAL_EVERY = 3
# Scripted val losses for plateau: improves, stalls, improves once, stalls.
VAL_LOSSES = [1.0, 0.9, 0.9, 0.9, 0.95, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]


class TinyTask(Task):
    """Two linear layers and no data: these tests only look at lrs."""

    def __init__(self, train_size: int = 1000) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        self.train_size = train_size

    def epoch_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        yield from range(self.batches_per_epoch(batch_size))

    def batches_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.train_size / batch_size)

    def loss(self, batch: Any) -> torch.Tensor:
        return sum((p.square().sum() for p in self.model.parameters()), torch.zeros(()))

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        return {"val_loss": 0.0}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(layer.parameters()) for layer in self.model]

    def batch_examples(self, batch: Any) -> int:
        return 1


# name -> (spec params, the torch scheduler that spec means, built by hand)
Reference = Callable[[torch.optim.Optimizer, int], Any]
CASES: dict[str, tuple[dict[str, Any], Reference]] = {
    "constant": ({}, lambda opt, n: sched.ConstantLR(opt, factor=1.0, total_iters=0)),
    "step": (
        {"step_size": 7, "gamma": 0.5},
        lambda opt, n: sched.StepLR(opt, step_size=7, gamma=0.5),
    ),
    "multistep": (
        {"milestones": [10, 25], "gamma": 0.3},
        lambda opt, n: sched.MultiStepLR(opt, milestones=[10, 25], gamma=0.3),
    ),
    "exponential": ({"gamma": 0.9}, lambda opt, n: sched.ExponentialLR(opt, gamma=0.9)),
    "cosine": (
        {"eta_min": 0.001},
        lambda opt, n: sched.CosineAnnealingLR(opt, T_max=n, eta_min=0.001),
    ),
    "cosine_restarts": (
        {"T_0": 5, "T_mult": 2, "eta_min": 0.002},
        lambda opt, n: sched.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=2, eta_min=0.002),
    ),
    "cyclic": (
        {"max_lr": 0.5, "step_size_up": 6, "step_size_down": 4, "mode": "triangular2"},
        lambda opt, n: sched.CyclicLR(
            opt, base_lr=LR, max_lr=0.5, step_size_up=6, step_size_down=4, mode="triangular2"
        ),
    ),
    "one_cycle": (
        {"max_lr": 0.5, "pct_start": 0.25, "final_div_factor": 100.0},
        lambda opt, n: sched.OneCycleLR(
            opt, max_lr=0.5, total_steps=n, pct_start=0.25, final_div_factor=100.0
        ),
    ),
    "linear": (
        {"end_factor": 0.1},
        lambda opt, n: sched.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=n),
    ),
    "plateau": (
        {"factor": 0.5, "patience": 1, "min_lr": 0.01},
        lambda opt, n: sched.ReduceLROnPlateau(opt, factor=0.5, patience=1, min_lr=0.01),
    ),
    "range_test": (
        {"end_lr": 10.0},
        lambda opt, n: sched.ExponentialLR(opt, gamma=(10.0 / LR) ** (1 / (n - 1))),
    ),
}


def make_spec(schedule: dict[str, Any], **overrides: Any) -> TrialSpec:
    data: dict[str, Any] = {
        "task": "digits",  # the name only: these tests build TinyTask themselves
        "optimizer": {"name": "sgd", "lr": LR, "momentum": 0.9},
        "schedule": schedule,
        "budget": {"max_steps": STEPS},
        "eval_every": EVAL_EVERY,
    }
    data.update(overrides)
    return TrialSpec.model_validate(data)


def run_built(spec: TrialSpec, task: Task, steps: int = STEPS) -> list[list[float]]:
    """The lrs of each step, as LrSchedule drives them."""
    training = build_training(spec, task)
    lrs = []
    for step in range(1, steps + 1):
        lrs.append(training.schedule.current_lrs())
        training.optimizer.zero_grad()
        task.loss(None).backward()
        training.optimizer.step()
        training.schedule.after_step()
        if step % EVAL_EVERY == 0:
            training.schedule.after_eval(VAL_LOSSES[step // EVAL_EVERY % len(VAL_LOSSES)])
    return lrs


def run_reference(
    opt: torch.optim.Optimizer,
    model: nn.Module,
    make: Reference,
    warmup: int,
    start_factor: float,
    steps: int = STEPS,
) -> list[list[float]]:
    """The same schedule written the way a torch user would, straight from the docs."""
    ramp = (
        sched.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
        if warmup
        else None
    )
    main = make(opt, steps - warmup)
    plateau = main if isinstance(main, sched.ReduceLROnPlateau) else None
    if ramp is not None and plateau is None:
        main = sched.SequentialLR(opt, [ramp, main], milestones=[warmup])
    lrs = []
    for step in range(1, steps + 1):
        lrs.append([group["lr"] for group in opt.param_groups])
        opt.zero_grad()
        sum(p.square().sum() for p in model.parameters()).backward()
        opt.step()
        if plateau is None:
            main.step()
        elif ramp is not None and step <= warmup:
            ramp.step()
        if plateau is not None and step % EVAL_EVERY == 0 and step >= warmup:
            plateau.step(VAL_LOSSES[step // EVAL_EVERY % len(VAL_LOSSES)])
    return lrs


def assert_same(built: list[list[float]], reference: list[list[float]]) -> None:
    assert len(built) == len(reference)
    for step, (got, want) in enumerate(zip(built, reference, strict=True)):
        assert got == pytest.approx(want, rel=1e-12, abs=0), f"step {step}"


def test_registry_matches_spec_registry() -> None:
    assert set(SCHEDULE_BUILDERS) == set(SCHEDULES)
    assert set(CASES) == set(SCHEDULES)  # so the tests below cover every schedule


@pytest.mark.parametrize("warmup", [0, 5])
@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch(name: str, warmup: int) -> None:
    params = {"name": name, **CASES[name][0], "warmup_steps": warmup, "warmup_start_factor": 0.2}
    task = TinyTask()
    built = run_built(make_spec(params), task)

    reference_task = TinyTask()
    opt = torch.optim.SGD(reference_task.model.parameters(), lr=LR, momentum=0.9)
    reference = run_reference(opt, reference_task.model, CASES[name][1], warmup, 0.2)
    assert_same(built, reference)
    # Not a flat line by accident: every schedule but constant moves the lr here.
    if name != "constant" or warmup:
        assert len({lrs[0] for lrs in built}) > 2


# A schedule named alone: its derived fields (services.specs.schedule_defaults) as torch
# would be given them by hand, for STEPS = 40 steps of lr LR.
DERIVED: dict[str, Reference] = {
    "step": lambda opt, n: sched.StepLR(opt, step_size=math.ceil(n / 3), gamma=0.1),
    "multistep": lambda opt, n: sched.MultiStepLR(opt, milestones=[n // 2, 3 * n // 4]),
    "exponential": lambda opt, n: sched.ExponentialLR(opt, gamma=0.01 ** (1 / n)),
    "cosine_restarts": lambda opt, n: sched.CosineAnnealingWarmRestarts(opt, T_0=n // 4),
    "cyclic": lambda opt, n: sched.CyclicLR(opt, base_lr=LR, max_lr=4 * LR, step_size_up=n // 4),
    "one_cycle": lambda opt, n: sched.OneCycleLR(opt, max_lr=LR, total_steps=n),
    "linear": lambda opt, n: sched.LinearLR(opt, 1.0, 0.0, total_iters=n),
}


@pytest.mark.parametrize("warmup", [0, 8])
@pytest.mark.parametrize("name", sorted(DERIVED))
def test_a_schedule_named_alone_derives_its_fields(name: str, warmup: int) -> None:
    built = run_built(make_spec({"name": name, "warmup_steps": warmup}), TinyTask())
    reference_task = TinyTask()
    opt = torch.optim.SGD(reference_task.model.parameters(), lr=LR, momentum=0.9)
    assert_same(built, run_reference(opt, reference_task.model, DERIVED[name], warmup, 0.1))


def test_derived_exponential_and_step_fall_100x_over_the_run() -> None:
    for name in ("exponential", "step"):
        lrs = run_built(make_spec({"name": name}), TinyTask(), steps=STEPS + 1)
        assert lrs[-1][0] == pytest.approx(LR / 100), name  # after the last step


def test_warmup_fraction_is_a_share_of_the_budget() -> None:
    # 40 steps x 0.25: the same series as warmup_steps 10, also in an epochs budget.
    fraction = run_built(make_spec({"name": "cosine", "warmup_fraction": 0.25}), TinyTask())
    steps = run_built(make_spec({"name": "cosine", "warmup_steps": 10}), TinyTask())
    assert_same(fraction, steps)
    epochs = {"budget": {"epochs": 1}, "batch_size": 25}  # 1000 / 25 = 40 steps
    spec = make_spec({"name": "cosine", "warmup_fraction": 0.25}, **epochs)
    by_epochs = run_built(spec, TinyTask())
    assert_same(by_epochs, steps)


@pytest.mark.parametrize("name", ["cyclic", "one_cycle", "cosine", "plateau"])
def test_sqrt_scaling_multiplies_every_lr(name: str) -> None:
    # batch 128 over base 32 with sqrt: every lr of the trial doubles, absolute ones too.
    params = {"name": name, **CASES[name][0]}
    spec = make_spec(params, batch_size=128, lr_scaling={"rule": "sqrt", "base_batch_size": 32})
    built = run_built(spec, TinyTask())

    reference_task = TinyTask()
    opt = torch.optim.SGD(reference_task.model.parameters(), lr=2 * LR, momentum=0.9)
    scaled: dict[str, Reference] = {
        "cyclic": lambda opt, n: sched.CyclicLR(
            opt, base_lr=2 * LR, max_lr=1.0, step_size_up=6, step_size_down=4, mode="triangular2"
        ),
        "one_cycle": lambda opt, n: sched.OneCycleLR(
            opt, max_lr=1.0, total_steps=n, pct_start=0.25, final_div_factor=100.0
        ),
        "cosine": lambda opt, n: sched.CosineAnnealingLR(opt, T_max=n, eta_min=0.002),
        "plateau": lambda opt, n: sched.ReduceLROnPlateau(opt, factor=0.5, patience=1, min_lr=0.02),
    }
    reference = run_reference(opt, reference_task.model, scaled[name], 0, 1.0)
    assert_same(built, reference)


def test_cyclic_explicit_base_lr_with_layer_decay_and_momentum() -> None:
    spec = make_spec(
        {
            "name": "cyclic",
            "base_lr": 0.05,
            "max_lr": 0.4,
            "step_size_up": 5,
            "mode": "exp_range",
            "gamma": 0.97,
        },
        regularization={"layer_decay": 0.5},
    )
    task = TinyTask()
    training = build_training(spec, task)
    built_lrs, built_momenta = [], []
    for _ in range(STEPS):
        built_lrs.append(training.schedule.current_lrs())
        built_momenta.append([g["momentum"] for g in training.optimizer.param_groups])
        training.optimizer.step()
        training.schedule.after_step()

    # Group 0 is the last layer with the full lrs; group 1, the first layer, has half.
    reference_task = TinyTask()
    last, first = reference_task.model[1], reference_task.model[0]
    opt = torch.optim.SGD(
        [{"params": last.parameters(), "lr": LR}, {"params": first.parameters(), "lr": LR / 2}],
        lr=LR,
        momentum=0.9,
    )
    cyclic = sched.CyclicLR(
        opt, base_lr=[0.05, 0.025], max_lr=[0.4, 0.2], step_size_up=5, mode="exp_range", gamma=0.97
    )
    reference_lrs, reference_momenta = [], []
    for _ in range(STEPS):
        reference_lrs.append([g["lr"] for g in opt.param_groups])
        reference_momenta.append([g["momentum"] for g in opt.param_groups])
        opt.step()
        cyclic.step()
    assert_same(built_lrs, reference_lrs)
    assert built_momenta == reference_momenta
    assert len({m[0] for m in built_momenta}) > 2  # momentum really cycles


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "lr": LR}, {"name": "adagrad", "lr": LR}])
@pytest.mark.parametrize("name", ["cyclic", "one_cycle"])
def test_no_momentum_cycling_without_momentum(optimizer: dict[str, Any], name: str) -> None:
    # torch would switch plain SGD's momentum on (and refuse Adagrad); we leave them be.
    spec = make_spec({"name": name, **CASES[name][0]}, optimizer=optimizer)
    training = build_training(spec, TinyTask())
    for _ in range(10):
        training.optimizer.step()
        training.schedule.after_step()
    assert all(g.get("momentum", 0) == 0 for g in training.optimizer.param_groups)


def test_one_cycle_never_steps_past_the_budget() -> None:
    spec = make_spec({"name": "one_cycle", "max_lr": 0.5, "warmup_steps": 4})
    training = build_training(spec, TinyTask())
    for _ in range(STEPS):
        training.optimizer.step()
        training.schedule.after_step()
    at_end = training.schedule.current_lrs()
    for _ in range(5):  # torch's OneCycleLR raises when stepped past its length
        training.optimizer.step()
        training.schedule.after_step()
    assert training.schedule.current_lrs() == at_end


def test_one_cycle_zero_length_phase_is_a_clear_error() -> None:
    spec = make_spec(
        {"name": "one_cycle", "max_lr": 0.5, "pct_start": 0.25}, budget={"max_steps": 4}
    )
    with pytest.raises(ValueError, match="pct_start"):
        build_training(spec, TinyTask())


def test_warmup_longer_than_an_epoch_budget_still_builds() -> None:
    # epochs budgets are not checked against warmup_steps by the spec (batches unknown there).
    spec = make_spec({"name": "cosine", "warmup_steps": 50}, budget={"epochs": 1}, batch_size=100)
    lrs = run_built(spec, TinyTask(), steps=10)
    assert lrs[0][0] == pytest.approx(0.1 * LR)
    assert lrs[-1][0] < LR


@pytest.mark.parametrize(
    "params",
    [
        {"name": "one_cycle", "max_lr": 0.5, "warmup_steps": 5},
        {"name": "cyclic", "max_lr": 0.5, "step_size_up": 4},
        {"name": "plateau", "factor": 0.5, "patience": 1, "warmup_steps": 5},
        {"name": "cosine_restarts", "T_0": 6},
    ],
)
def test_resume_from_state_dict_continues_the_series(params: dict[str, Any]) -> None:
    spec = make_spec(params)
    whole = run_built(spec, TinyTask())

    task = TinyTask()
    first = build_training(spec, task)
    lrs = []
    for step in range(1, 21):
        lrs.append(first.schedule.current_lrs())
        first.optimizer.step()
        first.schedule.after_step()
        if step % EVAL_EVERY == 0:
            first.schedule.after_eval(VAL_LOSSES[step // EVAL_EVERY % len(VAL_LOSSES)])
    saved = (first.optimizer.state_dict(), first.schedule.state_dict())

    # The documented order: build everything fresh, then load optimizer, then schedule.
    resumed = build_training(spec, task)
    resumed.optimizer.load_state_dict(saved[0])
    resumed.schedule.load_state_dict(saved[1])
    for step in range(21, STEPS + 1):
        lrs.append(resumed.schedule.current_lrs())
        resumed.optimizer.step()
        resumed.schedule.after_step()
        if step % EVAL_EVERY == 0:
            resumed.schedule.after_eval(VAL_LOSSES[step // EVAL_EVERY % len(VAL_LOSSES)])
    assert_same(lrs, whole)


def test_a_constant_schedule_without_warmup_steps_no_scheduler() -> None:
    # Nothing would change the lr; the runner pays nothing per step for it.
    schedule = build_training(make_spec({"name": "constant"}), TinyTask()).schedule
    assert schedule.scheduler is None and schedule.plateau is None
    warm = build_training(make_spec({"name": "constant", "warmup_steps": 5}), TinyTask())
    assert warm.schedule.scheduler is not None
