"""The same Client over an in-process transport: the app called directly (no socket), on
both store backends."""

from __future__ import annotations

import asyncio
import math

import httpx
import lrlab
import pytest
from fastapi import FastAPI

from services.store import Store
from tests.support.api import job, lr_grid_sweep


class InProcess(httpx.BaseTransport):
    """httpx.ASGITransport for a synchronous client: each request runs the app on an
    event loop of its own and comes back fully read."""

    def __init__(self, app: FastAPI) -> None:
        self.asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self.asgi.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(call())


@pytest.fixture
def local(app: FastAPI, store: Store) -> lrlab.Client:
    project = store.projects.create("in-process")
    secret = store.projects.issue_token(project.id, "sdk", is_admin=True).secret
    return lrlab.Client("http://lrlab.local", secret, transport=InProcess(app))


def test_the_client_works_in_process(local: lrlab.Client) -> None:
    assert local.project().name == "in-process"
    assert "digits" in {t.name for t in local.tasks()}
    sweep = local.create_sweep(lr_grid_sweep())
    trials = local.sweep(sweep.id).trials()
    assert [t.status for t in trials] == ["queued", "queued"]
    points = [{"name": "val_loss", "step": s, "value": 1.0 / (s + 1)} for s in range(50)]
    assert local.log_metrics(trials[0].id, [*points, {"name": "x", "step": 0, "value": math.nan}])
    (loss,) = local.metrics(trials[0].id, ["val_loss"], page_size=20)
    assert loss.steps == list(range(50))
    assert local.trial(trials[0].id).analysis().trial_id == trials[0].id
    assert local.cancel_sweep(sweep.id).status == "cancelled"


def test_errors_map_the_same_in_process(local: lrlab.Client) -> None:
    with pytest.raises(lrlab.NotFound):
        local.get_sweep(424242)
    with pytest.raises(lrlab.ValidationError) as caught:
        local.create_job(job(batch_size=0))
    assert caught.value.fields == ["batch_size"]


def test_a_run_logs_in_process(local: lrlab.Client) -> None:
    with local.start_run("in-process-run", flush_interval=0.01) as run:
        for s in range(120):
            run.log({"train_loss": 2.0 - s / 100}, step=s)
    assert run.stats.sent_points == 120
    assert local.get_run(run.id).status == "succeeded"


def test_a_run_declares_its_metric_names(local: lrlab.Client) -> None:
    with local.start_run("own-names", metric_names={"objective": "train_loss"}) as run:
        for s in range(300):
            run.log({"objective": 2.3 * 0.99**s, "loss": 5.0}, step=s)
    assert run.info.metric_names == {"objective": "train_loss"}
    assert local.get_run(run.id).metric_names == {"objective": "train_loss"}
    with pytest.raises(lrlab.ValidationError) as caught:
        local.start_run("bad-names", metric_names={"objective": "loss"})
    assert caught.value.fields == ["metric_names"]
