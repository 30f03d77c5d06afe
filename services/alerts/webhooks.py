"""Posting one webhook event: JSON, bounded in time, to the address that was checked.

The request goes to the address `resolve_target` approved (with the URL's host in the Host
header and, for https, in SNI and the certificate check), never to whatever the name
resolves to a moment later, and redirects are not followed: both would let a hook reach a
host the allowlist does not admit. The answer's body is never read; 2xx is success.

Headers: `X-Lrlab-Event` (finding, sweep_end), `X-Lrlab-Delivery` (the event's key: the
same on every retry, for receivers that dedupe), and, when a secret is configured,
`X-Lrlab-Timestamp` plus `X-Lrlab-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.alerts.webhook_targets import Resolver, TargetRefused, resolve_target, system_resolver

USER_AGENT = "lrlab-webhooks/1"


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None = None
    retry: bool = True  # worth another attempt (False: the target itself is refused)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _pinned_url(scheme: str, address: str, port: int, url: str) -> str:
    """`url` with its authority replaced by the approved address and port."""
    parts = httpx.URL(url)
    host = f"[{address}]" if ":" in address else address
    path = parts.raw_path.decode("ascii")
    return f"{scheme}://{host}:{port}{path}"


class WebhookSender:
    """Delivers events to allowed targets; one client (connection pool) for all posts."""

    def __init__(
        self,
        allowed_hosts: tuple[str, ...],
        *,
        timeout: float,
        secret: str | None = None,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._allowed = allowed_hosts
        self._secret = secret
        self._resolver = resolver
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, key: str, event: dict[str, Any]) -> Delivery:
        try:
            target, address = resolve_target(url, self._allowed, self._resolver)
        except TargetRefused as exc:
            return Delivery(ok=False, error=f"refused: {exc}", retry=exc.temporary)
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        default_port = 443 if target.scheme == "https" else 80
        authority = target.host if target.port == default_port else f"{target.host}:{target.port}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": authority,
            "X-Lrlab-Event": str(event.get("type", "event")),
            "X-Lrlab-Delivery": key,
        }
        if self._secret:
            timestamp = str(int(time.time()))
            headers["X-Lrlab-Timestamp"] = timestamp
            headers["X-Lrlab-Signature"] = signature(self._secret, timestamp, body)
        request = self._client.build_request(
            "POST",
            _pinned_url(target.scheme, address, target.port, url),
            content=body,
            headers=headers,
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        try:
            response = self._client.send(request, stream=True)  # headers only: body unread
            response.close()
        except httpx.HTTPError as exc:
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Delivery(ok=True)
        return Delivery(ok=False, error=f"HTTP {response.status_code}")
