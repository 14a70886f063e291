"""The task hubs a gRPC server serves, chosen per call by the `taskhub` metadata.

`durabletask-azuremanaged` clients and workers name their hub in the `taskhub` metadata, as the
Durable Task Scheduler expects; the plain SDK sends none and gets the default hub. A sidecar opens
a hub the first time a call names it; a function app's host serves its own hub only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..engine.engine import Engine
from .work_items import WorkDispatcher

TASKHUB_METADATA = "taskhub"
DEFAULT_HUB = "default"


class HubRefused(Exception):
    """A call named a hub this server does not serve; the message says which it serves."""


@dataclass
class Hub:
    """One task hub: the engine that keeps it and the workers connected to it."""

    name: str
    engine: Engine
    dispatcher: WorkDispatcher


HubOpener = Callable[[str], Awaitable[Hub]]


class HubDirectory:
    """Hubs by name, each opened once (`open_hub` may refuse a name with `HubRefused`)."""

    def __init__(self, open_hub: HubOpener, default: str = DEFAULT_HUB) -> None:
        self.default = default
        self._open_hub = open_hub
        self._hubs: dict[str, Hub] = {}
        self._opening: dict[str, asyncio.Task[Hub]] = {}

    @property
    def hubs(self) -> list[Hub]:
        return list(self._hubs.values())

    def add(self, hub: Hub) -> None:
        """A hub that is already open (a function app's, served beside its HTTP API)."""
        self._hubs[hub.name.lower()] = hub

    async def get(self, metadata: dict[str, str]) -> Hub:
        name = metadata.get(TASKHUB_METADATA) or self.default
        key = name.lower()  # hub names are case-insensitive, as in Azure Storage
        hub = self._hubs.get(key)
        if hub is not None:
            return hub
        opening = self._opening.get(key)
        if opening is None:
            opening = self._opening[key] = asyncio.ensure_future(self._open_hub(name))
        try:
            hub = await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(key, None)
        self._hubs[key] = hub
        return hub
