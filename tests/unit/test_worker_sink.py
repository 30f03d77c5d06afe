"""The metric sink: blocks become rows, the first points go out at once, later ones in
batches, and what is not stored yet is known (for checkpoints)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from workers.sink import MetricSink, Row, block_sink


class Recorder:
    """A writer that keeps every batch; `gate`, when cleared, holds writes back."""

    def __init__(self) -> None:
        self.batches: list[list[Row]] = []
        self.wrote = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, rows: Sequence[Row]) -> None:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        self.batches.append(list(rows))
        self.wrote.set()


def test_blocks_become_one_row_per_step_and_name() -> None:
    writes = Recorder()
    sink = MetricSink(writes)
    sink.add_steps(10, {"lr": [0.1, 0.1], "train_loss": [2.0, float("nan")]}, [1.0, 2.0])
    sink.add("val_loss", 11, 1.5)
    sink.close()
    rows = sorted(r for batch in writes.batches for r in batch if r[0] != "train_loss")
    assert rows[:2] == [("lr", 10, 0.1, 1.0), ("lr", 11, 0.1, 2.0)]
    assert rows[2][:3] == ("val_loss", 11, 1.5)
    losses = [r for batch in writes.batches for r in batch if r[0] == "train_loss"]
    assert [r[1] for r in losses] == [10, 11] and losses[1][2] != losses[1][2]  # NaN kept


def test_the_first_points_are_written_at_once_then_batched_by_age() -> None:
    writes = Recorder()
    sink = MetricSink(writes, max_points=1000, max_age_seconds=60)
    sink.add_steps(0, {"train_loss": [2.3]}, [0.0])
    # No flush and an age of a minute: only "first points go out at once" writes this.
    assert writes.wrote.wait(timeout=10), "the first point was not written at once"
    assert writes.batches == [[("train_loss", 0, 2.3, 0.0)]]
    sink.add_steps(1, {"train_loss": [2.2]}, [0.1])
    # The writer now waits for 1000 points or a minute: the point is still unsent.
    assert 1 in [block[0] for block in sink.unsent()]
    sink.close()
    assert len(writes.batches) == 2


def test_a_full_batch_is_written_without_waiting_for_its_age() -> None:
    writes = Recorder()
    sink = MetricSink(writes, max_points=4, max_age_seconds=60)
    sink.add("x", 0, 0.0)
    assert writes.wrote.wait(timeout=10)
    writes.wrote.clear()
    sink.add_steps(1, {"a": [1.0, 2.0], "b": [3.0, 4.0]}, [0.0, 0.0])  # 4 points: full
    assert writes.wrote.wait(timeout=10), "a full batch waited for its age"
    sink.close()


def test_unsent_holds_what_is_being_written_until_it_is_stored() -> None:
    writes = Recorder()
    writes.gate.clear()  # the first write blocks: its batch is in flight
    sink = MetricSink(writes, max_age_seconds=60)
    first = (0, {"train_loss": [2.3]}, [0.0])
    sink.add_steps(*first)
    second = (1, {"train_loss": [2.2]}, [0.1])
    sink.add_steps(*second)
    assert first in sink.unsent() and second in sink.unsent()
    writes.gate.set()
    sink.flush()
    assert sink.unsent() == []
    sink.close()


def test_a_write_that_keeps_failing_surfaces_at_flush() -> None:
    def broken(rows: Sequence[Row]) -> None:
        raise OSError("database gone")

    sink = MetricSink(broken, retries=0)
    sink.add("x", 0, 1.0)
    with pytest.raises(RuntimeError, match="metric writes failed"):
        sink.flush()


def test_a_sink_with_only_add_and_flush_is_adapted() -> None:
    class Plain:
        def __init__(self) -> None:
            self.points: list[tuple[str, int, float]] = []
            self.flushes = 0

        def add(self, name: str, step: int, value: float) -> None:
            self.points.append((name, step, value))

        def flush(self) -> None:
            self.flushes += 1

    plain = Plain()
    adapted = block_sink(plain)
    adapted.add_steps(5, {"lr": [0.1, 0.2]}, [0.0, 0.0])
    assert plain.points == [("lr", 5, 0.1), ("lr", 6, 0.2)]
    # Nothing to carry in a checkpoint: it flushes instead.
    assert adapted.unsent() == [] and plain.flushes == 1
    sink = MetricSink(Recorder())
    assert block_sink(sink) is sink
    sink.close()
