"""The gRPC service beside a function app (`devhost start --grpc-port N`): one engine, one hub.

The app's orchestrators and activities run where the app's runner runs them; every other name
belongs to a Durable Task worker connected over gRPC. The engine sees one runner
(`RoutingRunner`) and one index where both kinds of name are known, so an app orchestration can
call a worker's activity and a worker's orchestration can be listed by the dashboard, steered by
`devhost durable` and the HTTP management API, all on the same hub.
"""

from __future__ import annotations

import functools
from datetime import datetime

from ..app.app_index import FunctionIndex
from ..app.http_call import HttpAnswer, HttpCall
from ..engine.engine import Engine
from ..engine.entities import EntityRequest, OperationOutcome
from ..engine.replay import EpisodeCall, ReplayResult
from ..engine.warm import WarmStats
from ..runner import ActivityDone, ActivityTask, EntityBatch, FunctionRunner
from ..taskhub.model import InstanceRecord
from .hubs import Hub, HubDirectory, HubRefused
from .names import worker_index
from .runner import GrpcRunner
from .server import GrpcServer
from .sidecar import deliver_event
from .work_items import WorkDispatcher


class RoutingRunner(FunctionRunner):
    """The app's functions to the app's runner, every other name to the gRPC workers."""

    def __init__(
        self, index: FunctionIndex, app: FunctionIndex, app_runner: FunctionRunner, grpc: GrpcRunner
    ) -> None:
        super().__init__(index)
        self.app = app
        self.app_runner = app_runner
        self.grpc = grpc

    def describe(self) -> str:
        return f"{self.app_runner.describe()}; other names: {self.grpc.describe()}"

    def launch(self) -> None:
        self.app_runner.launch()

    async def start(self) -> None:
        await self.app_runner.start()
        await self.grpc.start()

    async def stop(self) -> None:
        await self.grpc.stop()
        await self.app_runner.stop()

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        if call.name in self.app.orchestrators:
            return await self.app_runner.episode(call)
        return await self.grpc.episode(call)

    def discard(self, instance_id: str) -> None:
        self.app_runner.discard(instance_id)
        self.grpc.discard(instance_id)

    async def entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> list[OperationOutcome]:
        if record.name.lower() in self.app.entities:
            return await self.app_runner.entity_batch(record, requests)
        return await self.grpc.entity_batch(record, requests)

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        raise AssertionError("entity_batch goes to the app's runner or the workers")

    def start_activity(
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
    ) -> None:
        runner = self.app_runner if name in self.app.activities else self.grpc
        runner.start_activity(name, input_json, done, created, task)

    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        return await self.app_runner.http(name, call)

    async def warm_stats(self) -> WarmStats:
        return await self.app_runner.warm_stats()

    def waiting_for(self, instance_id: str) -> str | None:
        return self.grpc.waiting_for(instance_id)


class GrpcBesideApp:
    """What a host adds for `--grpc-port`: the engine's index and runner, and the gRPC server.

    Args:
        app: the app's index.
        app_runner: where the app's functions run.
        hub_name: the app's task hub, the only one served (the `taskhub` metadata may name it).
        host: the address to listen on.
        port: the gRPC port (0 picks a free one).
    """

    def __init__(
        self,
        app: FunctionIndex,
        app_runner: FunctionRunner,
        hub_name: str,
        host: str,
        port: int,
    ) -> None:
        self.hub_name = hub_name
        self.index = worker_index(app)
        self.dispatcher = WorkDispatcher()
        self.grpc_runner = GrpcRunner(self.index, self.dispatcher)
        self.runner = RoutingRunner(self.index, app, app_runner, self.grpc_runner)
        self.hubs = HubDirectory(self._other_hub, default=hub_name)
        self.server = GrpcServer(self.hubs, host, port)

    @property
    def address(self) -> str:
        return self.server.address

    def attach(self, engine: Engine) -> None:
        """The app's engine, which the gRPC service serves as the app's hub."""
        self.grpc_runner.raise_event = functools.partial(deliver_event, engine)
        self.hubs.add(Hub(self.hub_name, engine, self.dispatcher))

    async def _other_hub(self, name: str) -> Hub:
        raise HubRefused(
            f"This host serves the task hub '{self.hub_name}' only (the app's); "
            f"'{name}' is not served here. Use `devhost sidecar` for hubs of their own."
        )

    async def start(self) -> None:
        await self.grpc_runner.start()
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
        await self.grpc_runner.stop()
