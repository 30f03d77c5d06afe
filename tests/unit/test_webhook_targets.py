"""Webhook targets: the allowlist, the schemes, and the addresses a hook may reach."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.alerts.webhook_targets import Resolver, TargetRefused, parse_target, resolve_target
from services.alerts.webhooks import WebhookSender

ALLOWED = ("hooks.example.com", "*.example.org", "10.0.0.7")


def resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


def mock_sender(answer: Callable[[httpx.Request], httpx.Response]) -> WebhookSender:
    lookup = resolver({"ci.example.org": ["93.184.216.34"]})
    return WebhookSender(
        ALLOWED, timeout=1.0, resolver=lookup, transport=httpx.MockTransport(answer)
    )


def test_exact_and_wildcard_entries() -> None:
    assert parse_target("https://HOOKS.example.com./x", ALLOWED).host == "hooks.example.com"
    deep = parse_target("http://a.b.example.org:8080/x", ALLOWED)
    assert (deep.port, deep.exact) == (8080, False)
    assert parse_target("https://hooks.example.com/x", ALLOWED).port == 443
    for url in ("https://example.org/", "https://xexample.org/", "https://hooks.example.com.evil/"):
        with pytest.raises(TargetRefused, match="not in this server's webhook allowlist"):
            parse_target(url, ALLOWED)


def test_an_empty_allowlist_disables_webhooks() -> None:
    with pytest.raises(TargetRefused, match="webhooks are disabled"):
        parse_target("https://hooks.example.com/", ())


def test_public_addresses_pass_and_the_checked_one_is_used() -> None:
    lookup = resolver({"ci.example.org": ["93.184.216.34", "2606:2800:220:1::1"]})
    target, address = resolve_target("https://ci.example.org/h", ALLOWED, lookup)
    assert (target.host, address) == ("ci.example.org", "93.184.216.34")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.9",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "fd00::1",
        "0.0.0.0",
    ],
)
def test_a_wildcard_host_may_not_resolve_inward(address: str) -> None:
    lookup = resolver({"ci.example.org": ["93.184.216.34", address]})
    with pytest.raises(TargetRefused, match="private or local address") as caught:
        resolve_target("https://ci.example.org/h", ALLOWED, lookup)
    assert not caught.value.temporary


def test_a_host_listed_exactly_may_be_internal() -> None:
    lookup = resolver({"hooks.example.com": ["10.9.9.9"]})
    assert resolve_target("http://hooks.example.com/", ALLOWED, lookup)[1] == "10.9.9.9"
    assert resolve_target("http://10.0.0.7:8080/", ALLOWED, lookup)[1] == "10.0.0.7"


def test_dns_failures_are_temporary() -> None:
    with pytest.raises(TargetRefused, match="did not resolve") as caught:
        resolve_target("https://gone.example.org/", ALLOWED, resolver({}))
    assert caught.value.temporary


def test_the_post_goes_to_the_checked_address_with_the_original_host() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    delivery = mock_sender(answer).send(
        "https://ci.example.org:8443/hook?team=ml", "k1", {"type": "finding"}
    )
    assert delivery.ok
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34:8443/hook?team=ml"
    assert request.headers["Host"] == "ci.example.org:8443"
    assert request.extensions["sni_hostname"] == "ci.example.org"
    assert request.headers["X-Lrlab-Event"] == "finding"
    assert "X-Lrlab-Signature" not in request.headers


def test_redirects_are_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/"})

    delivery = mock_sender(answer).send("http://ci.example.org/", "k", {"type": "finding"})
    assert not delivery.ok and delivery.error == "HTTP 302" and delivery.retry
