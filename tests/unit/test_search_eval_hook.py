"""The runner's one early-stopping hook: called after each evaluation but the last, and a
stop it asks for ends the trial before its next step."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from tests.support.training import MemorySink
from workers.checkpoints import CheckpointStore
from workers.runner import train


class Control:
    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self.last_step: int | None = None


def test_the_hook_sees_every_evaluation_but_the_last_and_can_stop_the_trial(
    tmp_path: Path,
) -> None:
    spec = TrialSpec.model_validate(
        {"task": "digits", "budget": {"max_steps": 50}, "eval_every": 10}
    )
    seen: list[tuple[int, float]] = []

    def watch(step: int, metrics: Mapping[str, float]) -> None:
        seen.append((step, metrics["val_loss"]))

    result = train(
        spec,
        sink=MemorySink(),
        checkpoints=CheckpointStore(tmp_path / "a"),
        control=Control(),
        on_eval=watch,
    )
    assert result.outcome is RunOutcome.SUCCEEDED
    assert [step for step, _ in seen] == [9, 19, 29, 39]  # 49, the last, decides nothing

    control = Control()

    def prune_at_second(step: int, metrics: Mapping[str, float]) -> None:
        if step == 19:
            control.stop_reason = "pruned by asha at step 19"

    sink = MemorySink()
    result = train(
        spec,
        sink=sink,
        checkpoints=CheckpointStore(tmp_path / "b"),
        control=control,
        on_eval=prune_at_second,
    )
    assert (result.outcome, result.detail) == (RunOutcome.CANCELLED, "pruned by asha at step 19")
    assert result.last_step == 19
    assert max(sink.points["train_loss"]) == 19  # not one step more
