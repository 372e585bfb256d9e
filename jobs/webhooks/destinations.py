"""Which webhook destinations the server may call: public https URLs, or hosts listed as allowed.

A user must not be able to aim the server at internal services (a database
admin page, a cloud metadata endpoint), so a destination whose host resolves
to a loopback, private, link-local, multicast or reserved address is
refused, unless ``JOBS["WEBHOOK_ALLOWED_HOSTS"]`` lists its ``host`` or
``host:port``. The check runs when a destination is chosen (a 400) and again
before every attempt, whose connection then goes to the very addresses that
were checked (DNS may have changed meanwhile).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobs.conf import jobs_settings
from jobs.exceptions import WebhookDestinationRefused

MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class Destination:
    """A checked destination: where to connect, and what to ask for there."""

    url: str
    secure: bool
    host: str
    port: int
    target: str
    addresses: tuple[str, ...]


def check_destination(url: str) -> Destination:
    """Return where ``url`` may be called; raise ``WebhookDestinationRefused`` (why) if not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise WebhookDestinationRefused(f"A webhook URL is an absolute URL of at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookDestinationRefused(f"The webhook URL is malformed ({exc}).") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookDestinationRefused("A webhook URL starts with https:// and names a host.")
    if parts.username or parts.password:
        raise WebhookDestinationRefused("A webhook URL may not carry a user name or password.")
    if any(ord(char) < 33 for char in url):
        raise WebhookDestinationRefused("A webhook URL may not contain spaces or control characters.")
    secure = parts.scheme == "https"
    port = port or (443 if secure else 80)
    allowed = _allowed(host, port)
    if not secure and not allowed:
        raise WebhookDestinationRefused("A webhook URL must use https.")
    addresses = _resolve(host, port)
    if not allowed:
        for address in addresses:
            if not _public(address):
                raise WebhookDestinationRefused(
                    f"The webhook host {host} resolves to {address}, a loopback, private, link-local "
                    "or reserved address: the server does not call those."
                )
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return Destination(url=url, secure=secure, host=host, port=port, target=target, addresses=addresses)


def _allowed(host: str, port: int) -> bool:
    listed = {entry.strip().lower() for entry in jobs_settings.WEBHOOK_ALLOWED_HOSTS}
    bare = host.strip("[]")
    return bool(listed & {host, bare, f"{host}:{port}", f"{bare}:{port}", f"[{bare}]:{port}"})


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookDestinationRefused(f"The webhook host {host} could not be resolved.") from None
    # Keep resolver order, without repeats.
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved
