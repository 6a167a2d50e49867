"""Waiting between retries without delaying a shutdown."""

from __future__ import annotations

import asyncio
import contextlib


def backoff_delay(failures: int, *, base: float = 0.2, cap: float = 10.0) -> float:
    """Exponential: base, 2*base, 4*base, … capped."""
    return min(cap, base * 2 ** max(0, min(failures - 1, 16)))


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
