"""Sending a webhook over HTTP. The unit of work carries how to open a sender, so a test
(or another transport) can stand in for httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
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
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer: ...


OpenWebhookSender = Callable[[float], AbstractAsyncContextManager[WebhookSender]]
"""Opens a sender for one sweep, given the timeout per request in seconds."""


class HttpWebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        try:
            response = await self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}"[:500])
        return Answer(status_code=response.status_code)


@asynccontextmanager
async def http_webhook_sender(timeout_seconds: float) -> AsyncIterator[WebhookSender]:
    """One HTTP client per sweep, closed after it."""
    async with httpx.AsyncClient(timeout=timeout_seconds) as client:
        yield HttpWebhookSender(client)
