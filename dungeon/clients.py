"""One storage client object per event loop: async clients belong to the loop that made them."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
_clients: dict[tuple[type, int, str], Any] = {}


def per_loop(kind: type[T], connection: str) -> T:
    """The `kind(connection)` of the running loop, made on first use."""
    key = (kind, id(asyncio.get_running_loop()), connection)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = kind(connection)
    return client


def client_options(connection: str) -> dict[str, bool]:
    """Keyword arguments for an async storage client of `connection`.

    The SDK trusts the environment by default, so aiohttp looks for a proxy and a netrc entry
    at every request: about a tenth of the game's CPU in a worker. A loopback endpoint
    (Azurite) goes through neither, so there the lookups are skipped; elsewhere the defaults.
    """
    if connection.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
        return {"use_env_settings": False}
    pairs = (part.partition("=") for part in connection.split(";"))
    hosts = {urlsplit(value).hostname for key, _, value in pairs if key.endswith("Endpoint")}
    loopback = bool(hosts) and hosts <= {"127.0.0.1", "localhost", "::1"}
    return {"use_env_settings": False} if loopback else {}
