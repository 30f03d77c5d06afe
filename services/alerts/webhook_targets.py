"""Which webhook URLs lrlab may call: http(s) only, hosts on the server's allowlist, and
never a private or loopback address the allowlist does not name exactly.

Checked twice: when a sweep is submitted (`check_notify_url`, a 422 naming notify.url)
and again before every delivery (`resolve_target`), since the allowlist or the DNS may
have changed since. The address checked is the one connected to (see services.alerts.webhooks),
so a name that resolves differently between the check and the request cannot slip past.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from services.domain.errors import InvalidInput
from services.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses
SCHEMES = ("http", "https")
ENV = "LRLAB_WEBHOOK_ALLOWED_HOSTS"


class TargetRefused(ValueError):
    """A URL lrlab will not call; the message says which rule it broke."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary  # e.g. DNS did not answer: worth another try


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lowercase, IDNA (ASCII), no brackets, no trailing dot
    port: int
    exact: bool  # the allowlist names this host itself (not through a wildcard)


def _host(parts: SplitResult) -> str:
    host = (parts.hostname or "").rstrip(".")
    try:
        return host.encode("idna").decode("ascii").lower() if host else ""
    except UnicodeError as exc:
        raise TargetRefused(f"host {host!r} is not a valid name") from exc


def _matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:])  # "*.example.com": a subdomain, not the name itself
    return host == entry


def parse_target(url: str, allowed: Sequence[str]) -> Target:
    """The target of `url` if its form and host are allowed; TargetRefused otherwise."""
    if not allowed:
        raise TargetRefused(f"webhooks are disabled on this server ({ENV} is empty)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise TargetRefused(f"must be an http or https URL, not {scheme or 'no scheme'!r}")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry credentials (user:password@)")
    host = _host(parts)
    if not host:
        raise TargetRefused("must name a host")
    entries = [e for e in allowed if _matches(host, e)]
    if not entries:
        raise TargetRefused(
            f"host {host!r} is not in this server's webhook allowlist ({ENV}: {', '.join(allowed)})"
        )
    default = 443 if scheme == "https" else 80
    exact = any(not e.startswith("*.") for e in entries)
    return Target(url=url.strip(), scheme=scheme, host=host, port=port or default, exact=exact)


def check_notify_url(url: str, settings: Settings) -> None:
    """Submission-time check of a sweep's notify.url (no DNS: that is delivery's job)."""
    try:
        parse_target(url, settings.webhook_hosts)
    except TargetRefused as exc:
        raise InvalidInput(f"notify.url {exc}", field="notify.url") from exc


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _internal(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve_target(
    url: str, allowed: Sequence[str], resolver: Resolver = system_resolver
) -> tuple[Target, str]:
    """The target and the address to connect to. Every address the host resolves to must
    be public, unless the allowlist names the host exactly (e.g. "127.0.0.1" for a local
    receiver, or an intranet name someone chose to allow)."""
    target = parse_target(url, allowed)
    literal = _literal(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(resolver(target.host, target.port))
        except OSError as exc:
            message = f"host {target.host!r} did not resolve: {exc}"
            raise TargetRefused(message, temporary=True) from exc
        if not addresses:
            raise TargetRefused(f"host {target.host!r} has no address", temporary=True)
    if not target.exact:
        internal = [a for a in addresses if _internal(ipaddress.ip_address(a))]
        if internal:
            raise TargetRefused(
                f"host {target.host!r} resolves to a private or local address ({internal[0]}); "
                f"only a host listed exactly in {ENV} may"
            )
    return target, addresses[0]
