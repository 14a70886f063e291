"""The durable engine: the place that wires its parts, and what the host's surfaces call.

The parts, each a module of its own (see docs/inside.md):
- `client.ClientOperations`: a client's requests on orchestrations, checked as the runtime does;
- `entity_runtime.EntityRuntimes`: entities, their requests and a client's calls to them;
- `episodes.Episodes`: an instance's episodes and their commits;
- `dispatch.Dispatch`: the work an episode asks for (activities, timers, children) and its results;
- `routing.Routing`: messages between instances, and children's creation;
- `instances.LiveInstances`: the live orchestrations in memory, loaded once, and who waits on them;
- `background.Background`: the work under way, for `wait_idle`.

Work is dispatched the moment it becomes ready: an activity's result, a timer's firing or a raised
event puts a message in the instance's inbox and schedules the instance; an instance that is
already in an episode picks the message up in its next one, so every ready event of a busy
instance is handed to the orchestrator in one replay.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from ..app.app_index import FunctionIndex
from ..clock import Clock
from ..store.base import StorageUnavailableError, TaskHubStore, current_deadline
from ..taskhub.errors import EngineError
from ..taskhub.history import NO_OPTIONS, StartOptions
from ..taskhub.model import InstanceQuery, InstanceRecord, RuntimeStatus, is_entity_id
from ..taskhub.ordering import InstanceOrder
from ..taskhub.rules import check_instance_id
from .background import Background
from .client import ClientOperations
from .dispatch import Dispatch
from .entities import EntityRequest, OperationOutcome, OrchestrationStart
from .entity_runtime import EntityRuntimes, EntityView
from .episodes import Episodes
from .hub_deletion import idle_or_refused
from .instances import LiveInstances
from .planner import WaitingOn
from .routing import Routing
from .timers import TimerService
from .user_code import UserCode

log = logging.getLogger("devhost.engine")
P = ParamSpec("P")
R = TypeVar("R")


def client_operation(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """A client request: it waits until recovery has run (within the caller's deadline)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = args[0]
        assert isinstance(engine, Engine)
        await engine.until_ready()
        return await method(*args, **kwargs)

    return wrapper


class Engine:
    """The engine of one task hub: its parts wired together, and its public operations."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        runner: UserCode,
        max_orchestrations: int = 20,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.runner = runner  # where user code runs: this process or worker processes
        self.background = Background()
        # The parts below call each other downwards only; upward calls are these late-bound
        # callbacks (a timer fires into dispatch, a notified instance runs its episodes).
        self.timers = TimerService(clock, lambda key, due: self.dispatch.timer_fired(key, due))
        self.instances = LiveInstances(
            index,
            store,
            clock,
            runner,
            self.timers,
            self.background,
            process=lambda orch: self.episodes.process(orch),
        )
        self.routing = Routing(index, store, clock, self.instances, self.background)
        self.entity_runtime = EntityRuntimes(
            index, store, clock, runner, self.background, self.routing
        )
        self.dispatch = Dispatch(index, clock, runner, self.timers, self.background, self.routing)
        self.episodes = Episodes(
            index,
            store,
            clock,
            runner,
            self.instances,
            self.routing,
            self.entity_runtime,
            self.dispatch,
            max_orchestrations,
        )
        self.client = ClientOperations(
            index, store, clock, self.instances, self.entity_runtime, self.dispatch
        )
        self.entity_runtime.start_orchestration = self._start_for_entity
        self._ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, then resume every live instance; client requests wait until then.

        The host listens before this runs, so an activity resumed here that calls the host
        through the durable client finds it answering.
        """
        log.info(self.runner.describe())
        await self.store.open()
        for instance_id in await self.store.active_instances():
            if is_entity_id(instance_id):
                await self.entity_runtime.resume(instance_id)
                continue
            orch = await self.instances.load(instance_id)
            if orch is not None:
                self.dispatch.resume(orch)
                self.instances.notify(orch)
        self._ready.set()

    async def open_for_clients(self) -> None:
        """Open the store for client operations only (the `durable` CLI with no host running).

        Starts, events and control messages are stored as a host stores them; nothing runs
        here: the host that next opens the hub resumes them.
        """
        self.background.offline = True
        await self.store.open()
        self._ready.set()

    async def until_ready(self) -> None:
        """Until start() has resumed the hub; past the caller's deadline, StorageUnavailable."""
        if self._ready.is_set():
            return
        deadline = current_deadline()
        if deadline is None:
            await self._ready.wait()
            return
        try:
            await asyncio.wait_for(self._ready.wait(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise StorageUnavailableError(
                "The host is still starting (waiting for its task hub storage)"
            ) from None

    async def stop(self) -> None:
        self.timers.close()
        await self.background.stop()
        await self.dispatch.http.close()
        await self.store.close()

    async def wait_idle(self) -> None:
        """Until no episode, activity or delivery is under way (timers may still be pending)."""
        await self.background.wait_idle()

    # -- orchestrations (ClientOperations) -------------------------------------------------

    @client_operation
    async def start_new(
        self,
        name: str,
        instance_id: str | None,
        input_json: str | None,
        options: StartOptions = NO_OPTIONS,
    ) -> str:
        """Start an orchestration; `options` are a Durable Task client's (version, tags, a
        scheduled start time)."""
        return await self.client.start_new(name, instance_id, input_json, options)

    @client_operation
    async def raise_event(
        self,
        instance_id: str,
        name: str,
        input_json: str | None,
        carried_from: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Raise an event; `carried_from` names the execution that carried it into its
        continue-as-new (an SDK's), which the next execution receives before events raised
        meanwhile; a `message_id` derived by the sender makes a repeat of the same event a
        no-op."""
        await self.client.raise_event(instance_id, name, input_json, carried_from, message_id)

    @client_operation
    async def terminate(self, instance_id: str, reason: str) -> None:
        await self.client.terminate(instance_id, reason)

    @client_operation
    async def suspend(self, instance_id: str, reason: str) -> None:
        await self.client.suspend(instance_id, reason)

    @client_operation
    async def resume(self, instance_id: str, reason: str) -> None:
        await self.client.resume(instance_id, reason)

    @client_operation
    async def rewind(self, instance_id: str, reason: str) -> None:
        await self.client.rewind(instance_id, reason)

    @client_operation
    async def restart(self, instance_id: str, with_new_id: bool) -> str:
        return await self.client.restart(instance_id, with_new_id)

    @client_operation
    async def get_status(self, instance_id: str) -> InstanceRecord | None:
        """The status row a client asks for, after checking the id as the runtime does."""
        check_instance_id(instance_id)
        return await self.client.get_record(instance_id)

    async def get_record(self, instance_id: str) -> InstanceRecord | None:
        """The instance's record: from memory if held or finished here, else a store read."""
        return await self.client.get_record(instance_id)

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        return await self.client.get_history(instance_id)

    @client_operation
    async def waiting_on(self, instance_id: str) -> WaitingOn | None:
        """What a live orchestration waits for (timers, events, tasks); None if it is not live."""
        return await self.client.waiting_on(instance_id)

    @client_operation
    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        return await self.client.query(query, top, continuation)

    def generations(self, instance_id: str) -> list[list[dict[str, Any]]]:
        """Histories of the executions before the current one that continued as new, oldest
        first: the last GENERATIONS_KEPT, remembered in memory while the instance runs here."""
        return self.instances.generations(instance_id)

    @client_operation
    async def summaries(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """A page of the instance list in `order` (the dashboard's), summaries only."""
        return await self.client.summaries(query, order, top, token)

    @client_operation
    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """How many instances (entities too) match the query, by runtime status."""
        return await self.client.count_by_status(query)

    @client_operation
    async def purge(self, instance_ids: list[str]) -> int:
        """Delete finished instances; live ones are left alone."""
        return await self.client.purge(instance_ids)

    @client_operation
    async def delete_hub(self) -> None:
        """Delete every instance, entities included (`delete-task-hub` through a running host).
        Live orchestrations are refused: terminate them first, as the durable CLI does."""
        self.client.refuse_while_running()
        await idle_or_refused(self.background, self.store, self.runner)  # see hub_deletion
        await self.client.delete_hub()

    async def wait_for_status(
        self, instance_id: str, statuses: set[RuntimeStatus], timeout: float
    ) -> InstanceRecord | None:
        """Wait until the instance has one of `statuses`; its last record either way."""
        return await self.client.wait_for_status(instance_id, statuses, timeout)

    # -- entities (EntityRuntimes) -----------------------------------------------------------

    @client_operation
    async def signal_entity(
        self,
        name: str,
        key: str,
        operation: str,
        input_json: str | None,
        due: datetime | None = None,
        request_id: str | None = None,
    ) -> None:
        """Store a signal for the entity, applied when `due` has come (at once without it)."""
        await self.entity_runtime.signal(name, key, operation, input_json, due, request_id)

    @client_operation
    async def entity_view(self, entity_id: str) -> EntityView | None:
        """The entity's record (state or not) and how many requests wait for it."""
        return await self.entity_runtime.view(entity_id)

    @client_operation
    async def release_entity_lock(self, entity_id: str, holder: str) -> None:
        await self.entity_runtime.release_lock(entity_id, holder)

    @client_operation
    async def remove_empty_entity(self, entity_id: str) -> bool:
        return await self.entity_runtime.remove_if_empty(entity_id)

    async def _start_for_entity(self, start: OrchestrationStart) -> None:
        """An orchestration an entity's operation starts. The operation applied again after a
        crash finds its own start by the execution id (even finished: it is not run again);
        another live instance of the id is left as it is; one the rules refuse is logged
        (raising would leave the entity's batch uncommitted, to fail again for good)."""
        if start.execution_id is not None:
            existing = await self.client.get_record(start.instance_id)
            if existing is not None and existing.execution_id == start.execution_id:
                return
        try:
            await self.client.start_new(
                start.name, start.instance_id, start.input, execution_id=start.execution_id
            )
        except EngineError as err:
            if err.status in (400, 413):
                log.error(
                    "%s: an entity's start of '%s' is refused: %s",
                    start.instance_id,
                    start.name,
                    err,
                )
            elif err.status != 409:
                raise

    @client_operation
    async def call_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> OperationOutcome:
        """Send an operation as a call from outside, and wait until it is applied and stored."""
        return await self.entity_runtime.call(name, key, operation, input_json)

    @client_operation
    async def read_entity(self, name: str, key: str) -> InstanceRecord | None:
        """The entity's record if it has state; None if it has none (or never existed)."""
        return await self.entity_runtime.read(name, key)

    @client_operation
    async def entity_queue(self, name: str, key: str) -> list[EntityRequest]:
        """The operations sent to an entity and not yet applied, oldest first."""
        return await self.entity_runtime.queue(name, key)
