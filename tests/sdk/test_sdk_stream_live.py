"""Live streams against a real server: every point once, resumed across reconnects and a
server restart, and an end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import lrlab

from tests.support.lrlab_server import LrlabServer


def collect(events: Iterator[lrlab.StreamEvent], seen: Counter[tuple[str, int]], until: int) -> str:
    """Read events into `seen` until a point at step `until` arrived; the last event id."""
    for e in events:
        seen.update((p.name, p.step) for p in e.points)
        if any(p.step >= until for p in e.points):
            assert e.id is not None
            return e.id
    raise AssertionError(f"the stream ended before step {until}")


def log_steps(run: lrlab.Run, steps: range) -> None:
    for s in steps:
        run.log({"train_loss": 1.0 / (s + 1), "lr": 0.01}, step=s)
    run.flush(timeout=60)


def test_a_trial_stream_sends_every_point_once_and_ends(client: lrlab.Client) -> None:
    run = client.start_run("streamed")
    log_steps(run, range(100))
    seen: Counter[tuple[str, int]] = Counter()
    events = iter(client.trial(run.id).stream())
    last_id = collect(events, seen, 98)  # a running trial's last step is held back
    # A new connection from that id continues where this one stopped.
    events.close()  # type: ignore[attr-defined]
    log_steps(run, range(100, 150))
    run.finish()
    resumed = list(client.stream_trial(run.id, last_event_id=last_id))
    for e in resumed:
        seen.update((p.name, p.step) for p in e.points)
    assert resumed[-1].type == "end"
    statuses = [e.data["status"] for e in resumed if e.type == "trial"]
    assert statuses[-1] == "succeeded"
    assert seen == Counter({(n, s): 1 for n in ("train_loss", "lr") for s in range(150)})


def test_a_stream_survives_a_server_restart(
    client: lrlab.Client, lrlab_server: LrlabServer
) -> None:
    run = client.start_run("restarted-stream", flush_interval=0.05)
    log_steps(run, range(200))
    seen: Counter[tuple[str, int]] = Counter()
    stream = client.stream_trial(run.id, max_reconnects=30)
    events = iter(stream)
    collect(events, seen, 198)
    lrlab_server.stop()
    lrlab_server.start()
    log_steps(run, range(200, 300))
    run.finish()
    rest = list(events)
    for e in rest:
        seen.update((p.name, p.step) for p in e.points)
    assert rest[-1].type == "end" and stream.reconnects >= 1
    assert seen == Counter({(n, s): 1 for n in ("train_loss", "lr") for s in range(300)})


def test_a_sweep_stream_ends_when_the_sweep_is_over(client: lrlab.Client) -> None:
    sweep = client.create_sweep(
        {"base": {"task": {"name": "digits"}}, "space": {"batch_size": {"values": [16, 32]}}}
    )
    client.cancel_sweep(sweep.id)
    events = list(client.sweep(sweep.id).stream())
    assert events[-1].type == "end" and events[-1].data["status"] == "cancelled"
    cancelled = {
        e.trial_id for e in events if e.type == "trial" and e.data["status"] == "cancelled"
    }
    assert cancelled == {t.id for t in client.trials(sweep.id)}
