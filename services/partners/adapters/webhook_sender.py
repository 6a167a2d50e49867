"""Sending a webhook over HTTP, and resolving a partner's host name. The unit of work carries
both (how to open a sender, how to resolve a name), so a test, or another transport, can stand
in for httpx and for DNS.

The sender never resolves a name itself: it connects to the address it is given, one the use
case has resolved and checked (``domain/webhook_targets.py``), and still speaks to the
partner's host name (the ``Host`` header, and TLS server name and certificate check), so a
name cannot resolve to a public address when checked and to an inward one when connected to.
Environment proxies are ignored and redirects are not followed, for the same reason.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class Answer:
    """What the partner's endpoint answered, or why it could not be reached."""

    status_code: int | None = None
    error: str | None = None


class WebhookSender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, address: str
    ) -> Answer:
        """POST to ``url``, connecting to ``address`` (an IP address the host was checked to
        resolve to), never to whatever the host resolves to now."""
        ...


OpenWebhookSender = Callable[[float], AbstractAsyncContextManager[WebhookSender]]
"""Opens a sender for one sweep, given the timeout per request in seconds."""

ResolveHost = Callable[[str, int], Awaitable[list[str]]]
"""Every IP address a host name resolves to (for a port); raises ``OSError`` when it cannot
be resolved."""


async def resolve_with_system(host: str, port: int) -> list[str]:
    """The system resolver (DNS, hosts file), as a connection would use it."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in found:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class HttpWebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, address: str
    ) -> Answer:
        try:
            target = httpx.URL(url)
            pinned = target.copy_with(host=address)
            extensions = {"sni_hostname": target.host} if target.host != address else {}
            response = await self._client.post(
                pinned,
                content=body,
                headers={**headers, "Host": target.netloc.decode("ascii")},
                extensions=extensions,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}"[:500])
        return Answer(status_code=response.status_code)


@asynccontextmanager
async def http_webhook_sender(timeout_seconds: float) -> AsyncIterator[WebhookSender]:
    """One HTTP client per sweep, closed after it."""
    async with httpx.AsyncClient(
        timeout=timeout_seconds, trust_env=False, follow_redirects=False
    ) as client:
        yield HttpWebhookSender(client)
