"""The one place requests are sent: auth header, timeouts, retries, error mapping."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from lrlab._retry import RetryPolicy, retry_after_seconds, retryable_error, retryable_status
from lrlab._version import VERSION
from lrlab.errors import ConnectionFailed, ServerError, error_from_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
Params = Mapping[str, Any] | list[tuple[str, Any]] | None


class Http:
    """An httpx.Client bound to one server and token. `transport` replaces the network
    (an in-process app in tests, a mock); the rest of the SDK never sees httpx directly."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"lrlab-python/{VERSION}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url
        self.retry = retry
        self.client = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """The successful response; an LrlabError for anything else once retries are spent."""
        policy = retry or self.retry
        idem = method.upper() in SAFE_METHODS if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                response = self.client.request(
                    method, path, json=json, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt < policy.retries and retryable_error(exc, idem):
                    policy.sleep(attempt)
                    attempt += 1
                    continue
                raise ConnectionFailed(
                    f"cannot reach the lrlab server at {self.url}: {exc!r}"
                ) from exc
            if response.is_success:
                return response
            if attempt < policy.retries and retryable_status(response.status_code, idem):
                policy.sleep(attempt, retry_after_seconds(response))
                attempt += 1
                continue
            raise error_from_response(response)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """`send`, decoded: the JSON body, or None for an empty answer."""
        response = self.send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(
                f"the server answered {method} {path} with something other than JSON",
                status_code=response.status_code,
            ) from exc

    @contextmanager
    def stream(
        self,
        path: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """One streaming GET, its status checked; connection failures propagate as httpx
        errors so the caller decides whether to reconnect."""
        extra = {"Accept": "text/event-stream", **(headers or {})}
        kwargs: dict[str, Any] = {"params": params, "headers": extra}
        if timeout is not None:
            kwargs["timeout"] = timeout
        with self.client.stream("GET", path, **kwargs) as response:
            if not response.is_success:
                response.read()
                raise error_from_response(response)
            yield response
