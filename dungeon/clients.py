"""One storage client object per event loop: async clients belong to the loop that made them."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T")
_clients: dict[tuple[type, int, str], Any] = {}


def per_loop(kind: type[T], connection: str) -> T:
    """The `kind(connection)` of the running loop, made on first use."""
    key = (kind, id(asyncio.get_running_loop()), connection)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = kind(connection)
    return client
