"""Errors become exceptions carrying the server's message; retries happen only when a
second try cannot do harm."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import lrlab
import pytest
from lrlab._retry import RetryPolicy, retry_after_seconds

from tests.support.api import lr_grid_sweep
from tests.support.lrlab_server import LrlabServer
from tests.support.net import free_port

# -- against the real server ----------------------------------------------------------------


def test_validation_error_names_the_field(client: lrlab.Client) -> None:
    with pytest.raises(lrlab.ValidationError) as caught:
        client.create_sweep(lr_grid_sweep(max_concurrent=0))
    err = caught.value
    assert err.status_code == 422 and err.fields == ["max_concurrent"]
    assert "greater than or equal to 1" in err.message
    assert "HTTP 422 POST /sweeps" in str(err)
    assert err.details[0].location == "body"


def test_unknown_objects_are_not_found(client: lrlab.Client) -> None:
    for call in (
        lambda: client.get_sweep(987654),
        lambda: client.get_trial(987654),
        lambda: client.trial(987654).analysis(),
        lambda: client.log_metrics(987654, [{"name": "x", "step": 0, "value": 1.0}]),
    ):
        with pytest.raises(lrlab.NotFound) as caught:
            call()
        assert caught.value.status_code == 404 and caught.value.message


def test_bad_or_missing_token_is_unauthorized(
    lrlab_server: LrlabServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = lrlab.Client(lrlab_server.url, "lrl_not-a-token")
    with bad, pytest.raises(lrlab.Unauthorized):
        bad.list_sweeps()
    # No token anywhere: no argument, no LRLAB_TOKEN, no local admin-token file.
    monkeypatch.delenv("LRLAB_TOKEN", raising=False)
    monkeypatch.delenv("LRLAB_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with lrlab.Client(lrlab_server.url) as anonymous:
        with pytest.raises(lrlab.Unauthorized, match="missing bearer token"):
            anonymous.project()
        assert anonymous.health().status == "ok"  # the one route without a token


def test_a_local_admin_token_file_is_used(
    lrlab_server: LrlabServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LRLAB_TOKEN", raising=False)
    monkeypatch.setenv("LRLAB_DATA_DIR", str(lrlab_server.data_dir))
    with lrlab.Client(lrlab_server.url) as local:
        assert local.project().name == "default"


def test_conflict_on_finishing_a_run_two_ways(client: lrlab.Client) -> None:
    run = client.start_run("conflict")
    run.finish()
    with pytest.raises(lrlab.Conflict) as caught:
        client.finish_run(run.id, status="failed")
    assert caught.value.status_code == 409


def test_too_many_points_is_payload_too_large(client: lrlab.Client) -> None:
    trial_id = client.trials(client.create_sweep(lr_grid_sweep()).id)[0].id
    points = [{"name": "x", "step": s, "value": 0.0} for s in range(50_001)]
    with pytest.raises(lrlab.PayloadTooLarge) as caught:
        client.log_metrics(trial_id, points)
    assert "limit is 50000" in caught.value.message


def test_no_server_is_connection_failed() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        lrlab.Client(url, "t", retries=2, backoff=0.01) as c,
        pytest.raises(lrlab.ConnectionFailed, match="cannot reach"),
    ):
        c.list_sweeps()


# -- retries, with a transport that answers what the test wants -----------------------------


def scripted(answers: list[int | Exception], seen: list[httpx.Request]) -> httpx.MockTransport:
    """Answers in order: a status code (JSON body) or an exception to raise."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        headers = {"Retry-After": "0"} if answer in (429, 503) else {}
        body = {"detail": [{"field": "", "message": f"status {answer}", "type": "x"}]}
        if answer < 400:
            body = {"status": "ok", "database": "x", "version": "1"}
        return httpx.Response(answer, json=body, headers=headers)

    return httpx.MockTransport(handle)


def mock_client(answers: list[int | Exception], seen: list[httpx.Request]) -> lrlab.Client:
    return lrlab.Client(
        "http://lrlab.test", "t", retries=3, backoff=0.001, transport=scripted(answers, seen)
    )


CONNECT = httpx.ConnectError("refused")
DROPPED = httpx.ReadError("connection reset")


@pytest.mark.parametrize(
    ("answers", "calls"),
    [
        ([503, 502, 504, 200], 4),
        ([429, 200], 2),
        ([CONNECT, DROPPED, 200], 3),
    ],
)
def test_reads_are_retried_until_they_succeed(answers: list[int | Exception], calls: int) -> None:
    seen: list[httpx.Request] = []
    answer = mock_client(answers, seen)._http.call("GET", "/project")
    assert answer["status"] == "ok" and len(seen) == calls


def test_retries_run_out() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(lrlab.ServerError) as caught:
        mock_client([503] * 4, seen)._http.call("GET", "/project")
    assert len(seen) == 4 and caught.value.status_code == 503


@pytest.mark.parametrize(
    ("answers", "error", "calls"),
    [
        ([503, 200], lrlab.ServerError, 1),  # the sweep may exist: not sent again
        ([DROPPED, 200], lrlab.ConnectionFailed, 1),
        ([CONNECT, 200], None, 2),  # never reached the server: safe to send again
        ([429, 200], None, 2),  # refused before doing anything
    ],
)
def test_a_new_sweep_is_sent_again_only_when_safe(
    answers: list[int | Exception], error: type[Exception] | None, calls: int
) -> None:
    seen: list[httpx.Request] = []
    client = mock_client(answers, seen)
    send: Callable[[], object] = lambda: client._http.call("POST", "/sweeps", json={})  # noqa: E731
    if error is None:
        send()
    else:
        with pytest.raises(error):
            send()
    assert len(seen) == calls


def test_metric_batches_and_cancels_are_idempotent_so_retried() -> None:
    seen: list[httpx.Request] = []
    client = mock_client([503, 200, DROPPED, 200], seen)
    client._http.call("POST", "/trials/1/metrics", json={}, idempotent=True)
    client._http.call("POST", "/sweeps/1/cancel", idempotent=True)
    assert len(seen) == 4


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0, jitter=0.5, rng=random.Random(1))
    delays = [policy.delay(n) for n in range(6)]
    for n, d in enumerate(delays):
        cap = min(4.0, 0.5 * 2**n)
        assert cap / 2 <= d <= cap
    assert len(set(delays)) == len(delays)  # jittered
    assert policy.delay(0, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=1000.0) == policy.max_retry_after


def test_retry_after_as_seconds_or_date() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    assert retry_after_seconds(answer("3")) == 3.0
    assert retry_after_seconds(answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # past
    assert retry_after_seconds(answer("soon")) is None
    assert retry_after_seconds(httpx.Response(503)) is None


def test_retry_after_is_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("lrlab._retry.time.sleep", slept.append)

    def handle(request: httpx.Request) -> httpx.Response:
        if not slept:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": []})
        return httpx.Response(200, json=[])

    client = lrlab.Client("http://lrlab.test", "t", transport=httpx.MockTransport(handle))
    assert client.tasks() == []
    assert slept and slept[0] == 2.0


def test_non_json_error_bodies_keep_the_text() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500, text="proxy exploded"))
    client = lrlab.Client("http://lrlab.test", "t", retries=0, transport=transport)
    with pytest.raises(lrlab.ServerError, match="proxy exploded"):
        client.tasks()
