"""Many storage calls at once, but no more than a store's connections and Azurite serve well."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def bounded_gather(calls: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await every call, at most `limit` at a time; the results in the calls' order."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with slots:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))
