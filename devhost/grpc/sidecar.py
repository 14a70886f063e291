"""A Durable Task sidecar with no function app: every hub its own engine, store and workers.

`python -m devhost sidecar` runs one; tests and benchmarks start one in-process. A hub opens the
first time a call names it (the `taskhub` metadata; none names the default hub): its store is
made by `make_store(hub_name)`, its engine resumes whatever the store holds, and its runner hands
episodes and activities to the workers connected to that hub.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..clock import Clock
from ..engine.engine import Engine
from ..store.azure import HubInUseError
from ..store.base import TaskHubStore
from ..taskhub.errors import EngineError
from .hubs import DEFAULT_HUB, Hub, HubDirectory, HubRefused
from .names import worker_index
from .runner import GrpcRunner
from .server import GrpcServer
from .work_items import WorkDispatcher

DEFAULT_MAX_ORCHESTRATIONS = 100  # episodes out with workers at once, per hub


class Sidecar:
    """The gRPC server and its hubs.

    Args:
        make_store: the store of a hub, from its name (raise ValueError for a name it refuses).
        clock: the engine's clock (a `VirtualClock` in tests); the real one by default.
        host: the address to listen on (default: 127.0.0.1, this machine only).
        port: the port (0 picks a free one; `address` tells which).
        default_hub: the hub of calls that name none (the plain SDK sends no `taskhub`).
        max_orchestrations: episodes out with workers at once, per hub.
    """

    def __init__(
        self,
        make_store: Callable[[str], TaskHubStore],
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        default_hub: str = DEFAULT_HUB,
        max_orchestrations: int = DEFAULT_MAX_ORCHESTRATIONS,
    ) -> None:
        self.make_store = make_store
        self.clock = clock or Clock()
        self.max_orchestrations = max_orchestrations
        self.hubs = HubDirectory(self._open, default_hub)
        self.server = GrpcServer(self.hubs, host, port)

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> None:
        """Listen; the default hub opens now, so a store that does not answer is found at once."""
        await self.server.start()
        await self.hubs.get({})

    async def stop(self) -> None:
        await self.server.stop()
        for hub in self.hubs.hubs:
            await hub.engine.runner.stop()
            await hub.engine.stop()

    async def _open(self, name: str) -> Hub:
        try:
            store = self.make_store(name)
        except ValueError as err:  # a name the store cannot take (Azure: 3 to 45 alphanumerics)
            raise HubRefused(str(err)) from None
        dispatcher = WorkDispatcher()
        runner = GrpcRunner(worker_index(), dispatcher)
        engine = Engine(
            runner.index, store, self.clock, runner, max_orchestrations=self.max_orchestrations
        )
        runner.raise_event = functools.partial(deliver_event, engine)
        await runner.start()
        try:
            await engine.start()
        except HubInUseError as err:  # another host holds the hub's lease
            raise HubRefused(str(err)) from None
        return Hub(name, engine, dispatcher)


async def deliver_event(
    engine: Engine,
    instance_id: str,
    name: str,
    input_json: str | None,
    carried_from: str | None,
    message_id: str,
) -> None:
    """An event a worker sends (`send_event`, or carried over into a continue-as-new): raised
    as a client raises one, under the id its episode derived (a repeat is dropped); for an
    instance that does not exist or has finished it is dropped, as the SDK's backends drop it."""
    try:
        await engine.raise_event(instance_id, name, input_json, carried_from, message_id)
    except EngineError as err:
        if err.status not in (404, 410):
            raise
