"""External runs: log() buffers, a thread sends; nothing is lost while the server is away,
nothing is stored twice; the buffer's bound and its policies."""

from __future__ import annotations

import math
import threading
import time

import lrlab
import numpy as np
import pytest

from tests.sdk.fake_server import FakeRunServer
from tests.support.lrlab_server import LrlabServer
from tests.support.waiting import wait_until

NAMES = ("train_loss", "lr")

# -- against the real server ----------------------------------------------------------------


def stored_points(client: lrlab.Client, run_id: int) -> dict[str, dict[int, float]]:
    return {s.name: dict(zip(s.steps, s.values, strict=True)) for s in client.metrics(run_id)}


def test_a_run_logs_finishes_and_is_analysed(client: lrlab.Client) -> None:
    run = client.start_run(
        "sdk-run", config={"lr": 0.05}, tags=["sdk"], metric="val_accuracy", goal="maximize"
    )
    assert run.info.status == "running" and run.info.config == {"lr": 0.05}
    assert run.info.metric is not None and run.info.metric.goal == "maximize"
    for step in range(300):
        run.log({"train_loss": 2.0 * 0.99**step, "lr": 0.05})  # steps 0, 1, 2, ...
    run.log({"val_accuracy": 0.9, "odd": math.nan}, step=np.int64(299))
    analysis = run.finish()
    assert isinstance(analysis, lrlab.Analysis) and analysis.status == "succeeded"
    assert run.finish() is analysis  # once finished, the same answer
    assert run.pending == 0 and run.stats.sent_points == 602 and run.stats.dropped_points == 0

    points = stored_points(client, run.id)
    assert sorted(points["train_loss"]) == list(range(300))
    assert points["train_loss"][10] == pytest.approx(2.0 * 0.99**10)
    assert math.isnan(points["odd"][299]) and points["val_accuracy"] == {299: 0.9}
    info = client.get_run(run.id)
    assert info.status == "succeeded" and info.last_step == 299
    assert run.id in {r.id for r in client.iter_runs()}
    assert client.list_runs(status="succeeded").total >= 1
    with pytest.raises(lrlab.LrlabError, match="is finished"):
        run.log({"train_loss": 1.0})


def test_a_failing_script_marks_its_run_failed(client: lrlab.Client) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run("crashes") as run:
        run.log({"train_loss": 1.0}, step=0)
        _ = 1 / 0
    assert client.get_run(run.id).status == "failed"
    assert stored_points(client, run.id)["train_loss"] == {0: 1.0}


def test_a_quiet_run_beats_until_it_is_finished(client: lrlab.Client) -> None:
    run = client.start_run("long-eval", heartbeat_interval=0.05)
    assert run.info.last_seen_at is None  # nothing logged, no beat yet
    # Only a heartbeat can set it.
    wait_until(lambda: client.get_run(run.id).last_seen_at, "a heartbeat reaching the server")
    run.finish()
    beats = run._heartbeat._thread
    beats.join(timeout=10)
    assert not beats.is_alive()  # finished: no more beats
    info = client.get_run(run.id)
    assert info.status == "succeeded" and info.stop_reason is None


def test_log_checks_the_step(client: lrlab.Client) -> None:
    with client.start_run("steps") as run:
        with pytest.raises(ValueError, match="step must be >= 0"):
            run.log({"x": 1.0}, step=-1)
        with pytest.raises(TypeError):
            run.log({"x": 1.0}, step=1.5)  # type: ignore[arg-type]


def test_no_point_lost_or_doubled_across_a_server_restart(
    client: lrlab.Client, lrlab_server: LrlabServer
) -> None:
    """The server goes away mid-run and comes back on the same port and database."""
    run = client.start_run("restart", flush_interval=0.05, batch_size=200)
    step = 0

    def log_steps(n: int) -> None:
        nonlocal step
        for _ in range(n):
            run.log({"train_loss": 1.0 / (step + 1), "lr": step * 1e-3}, step=step)
            step += 1

    log_steps(1000)
    run.flush(timeout=60)
    lrlab_server.stop()
    try:
        log_steps(1000)  # logged while nothing listens: must return at once, not raise
        # The sender has tried, and failed, at least once.
        wait_until(lambda: run.stats.retries, "a retry while the server was down")
        assert run.pending > 0
    finally:
        lrlab_server.start()
    log_steps(1000)
    run.finish(timeout=120)

    assert run.stats.dropped_points == 0 and run.stats.retries > 0
    points = stored_points(client, run.id)
    for name in NAMES:
        assert sorted(points[name]) == list(range(3000)), name
    assert all(points["train_loss"][s] == pytest.approx(1.0 / (s + 1)) for s in range(3000))
    # Sending a stored batch again (as a retry after a lost answer would) changes nothing.
    again = [{"name": "lr", "step": s, "value": s * 1e-3} for s in range(1000, 1100)]
    assert client.log_metrics(run.id, again) == 100
    assert sorted(stored_points(client, run.id)["lr"]) == list(range(3000))


# -- the buffer, against a server that fails on demand -------------------------------------


def fake_run(fake: FakeRunServer, **options: object) -> lrlab.Run:
    client = lrlab.Client("http://lrlab.test", "t", transport=fake)
    return client.start_run("fake", flush_interval=0.01, **options)  # type: ignore[arg-type]


def test_a_full_buffer_blocks_log_until_the_server_is_back() -> None:
    fake = FakeRunServer()
    fake.metrics_status = 503
    run = fake_run(fake, batch_size=10, max_points=40)
    done = threading.Event()

    def produce() -> None:
        for s in range(100):
            run.log({"x": float(s)}, step=s)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert fake.failed.wait(10)
    assert not done.wait(0.5), "log() returned with a full buffer and a server away"
    assert run.pending <= 40
    fake.metrics_status = 200
    producer.join(30)
    assert done.is_set()
    run.finish(timeout=30)
    assert sorted(step for _, step in fake.stored) == list(range(100))
    assert run.stats.dropped_points == 0


def test_a_full_buffer_can_drop_the_oldest_points() -> None:
    fake = FakeRunServer()
    fake.metrics_status = 503
    run = fake_run(fake, batch_size=10, max_points=40, when_full="drop_oldest")
    for s in range(200):
        run.log({"x": float(s)}, step=s)
    assert run.pending <= 40 + 10  # the bound, plus a batch in flight
    fake.metrics_status = 200
    run.finish(timeout=30)
    steps = {step for _, step in fake.stored}
    missing = sorted(set(range(200)) - steps)
    assert run.stats.dropped_points == len(missing) > 0
    # What went were the oldest points waiting (a batch already in flight stays).
    assert missing == list(range(missing[0], missing[-1] + 1))
    assert set(range(missing[-1] + 1, 200)) <= steps


def test_a_full_buffer_can_raise() -> None:
    fake = FakeRunServer()
    fake.metrics_status = 503
    run = fake_run(fake, batch_size=10, max_points=40, when_full="raise")
    with pytest.raises(lrlab.BufferFull):
        for s in range(1000):
            run.log({"x": float(s)}, step=s)
    fake.metrics_status = 200
    run.finish(timeout=30)


def test_finish_times_out_while_the_server_is_away_and_keeps_the_points() -> None:
    fake = FakeRunServer()
    fake.metrics_status = 502
    run = fake_run(fake)
    for s in range(50):
        run.log({"x": 1.0, "y": 2.0}, step=s)
    with pytest.raises(lrlab.RunNotFlushed, match="100 points"):
        run.finish(timeout=0.3)
    fake.metrics_status = 200
    assert run.finish(timeout=30).kinds == ["healthy"]
    assert len(fake.stored) == 100


def test_batches_the_server_refuses_are_dropped_with_the_reason() -> None:
    fake = FakeRunServer()
    fake.refuse_name = "poison"
    run = fake_run(fake, batch_size=5)
    run.log({"poison": 1.0}, step=0)
    run.flush(timeout=30)
    for s in range(1, 20):
        run.log({"x": 1.0}, step=s)
    run.log({"bad\x00name": 1.0, "y": "not a number", "z": 3.0}, step=20)
    run.finish(timeout=30)
    assert run.stats.dropped_points == 3 and len(fake.stored) == 20
    reasons = " | ".join(run.stats.errors)
    assert "refused (422)" in reasons and "not valid" in reasons and "not a number" in reasons


def test_a_batch_too_large_is_split() -> None:
    fake = FakeRunServer()
    fake.max_points = 7
    run = fake_run(fake, batch_size=50)
    for s in range(30):
        run.log({"x": 1.0}, step=s)
    run.finish(timeout=30)
    assert len(fake.stored) == 30 and max(fake.batches) <= 7


def test_points_go_in_full_batches_not_a_trickle() -> None:
    """A loop logging slower than a round trip still sends batch_size points a request,
    not what arrived during the last one."""
    fake = FakeRunServer()
    fake.latency = 0.01
    client = lrlab.Client("http://lrlab.test", "t", transport=fake)
    run = client.start_run("batches", batch_size=100, flush_interval=60.0)
    for s in range(300):
        run.log({"x": 1.0}, step=s)
        time.sleep(0.001)  # the pace of a training step, not a wait for anything
    run.finish(timeout=30)
    assert len(fake.stored) == 300
    assert len(fake.batches) <= 3 and min(fake.batches[:-1]) >= 100, fake.batches
