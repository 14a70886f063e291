"""Messages between instances: a parent's children, a child's outcome, results to their
executions.

A message reaches its instance in memory (`route`), read from the store if it is not held; a
start message for an id not in memory starts a new instance, since every live instance is held
from start-up on. A child's start is stored first (`create_child`), once per parent task.
"""

from __future__ import annotations

from ..app.app_index import FunctionIndex
from ..clock import Clock
from ..store.base import TaskHubStore
from ..taskhub.history import EventType, StartOptions
from ..taskhub.model import Message, record_from_start
from .background import Background
from .instances import LiveInstances, Orchestration
from .messages import child_outcome, parent_message, start_message
from .planner import PendingTask, Work


class Routing:
    """Hands messages to their instances and creates children."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        instances: LiveInstances,
        background: Background,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.instances = instances
        self.background = background

    def route(self, message: Message) -> None:
        """Hand a stored message to its instance in memory (creating it for a start message).

        Every live instance is in memory from start-up on, so a start message for an id that is
        not in memory starts a new instance; one for a live instance is a duplicate that the
        planner drops.
        """
        orch = self.instances.get(message.instance_id)
        if orch is None and message.event["EventType"] == EventType.ExecutionStarted:
            orch = self.instances.start(record_from_start(message, self.clock.now()))
        if orch is None:
            self.background.spawn(self._route_after_load(message))
            return
        self.instances.deliver(orch, message)

    async def _route_after_load(self, message: Message) -> None:
        orch = await self.instances.load(message.instance_id)
        if orch is not None and all(m.message_id != message.message_id for m in orch.inbox):
            self.instances.deliver(orch, message)

    def deliver_result(self, message: Message) -> None:
        """A result for an execution, handed over now if its instance is in memory; a result
        for an execution that has ended is dropped."""
        orch = self.instances.get(message.instance_id)
        if orch is None:
            self.background.spawn(self.deliver(message))
        elif orch.record.execution_id == message.execution_id:
            self.instances.deliver(orch, message)

    async def deliver(self, message: Message) -> None:
        """Hand a result to its live instance; results for finished executions are dropped."""
        orch = await self.instances.load(message.instance_id)
        if orch is None or orch.record.execution_id != message.execution_id:
            return
        self.instances.deliver(orch, message)

    async def send(self, instance_id: str, outbox: list[Message]) -> None:
        """What an instance's commit sent: its children's starts are created, the rest routed."""
        for message in outbox:
            if (
                message.event["EventType"] == EventType.ExecutionStarted
                and message.instance_id != instance_id
            ):
                await self.create_child(message)
            else:
                self.route(message)

    # -- children ------------------------------------------------------------------------------

    def child_starts(self, orch: Orchestration, work: Work) -> list[Message]:
        """The start messages of the children `work` calls; a failure for an unknown one."""
        messages = []
        record = orch.record
        for task_id, task in work.children:
            if task.name not in self.index.orchestrators:
                messages.append(
                    parent_message(
                        self.clock.now(),
                        record.instance_id,
                        record.execution_id,
                        task_id,
                        failed=True,
                        reason=f"The orchestrator function '{task.name}' doesn't exist.",
                    )
                )
                continue
            parent = {
                "Name": record.name,
                "TaskScheduledId": task_id,
                "OrchestrationInstance": {
                    "InstanceId": record.instance_id,
                    "ExecutionId": record.execution_id,
                },
            }
            message_id = f"{record.execution_id}:{task_id}"
            if task.attempt > 1:  # the same task started again (a Durable Task SDK's retry)
                parent["Attempt"] = task.attempt
                message_id = f"{message_id}:{task.attempt}"
            options = StartOptions(version=task.version)
            start = start_message(
                self.clock.now(), task.target, task.name, task.input, parent, options
            )
            start.message_id = start.event["MessageId"] = message_id
            messages.append(start)
        return messages

    async def create_child(self, start: Message) -> None:
        """Store a child's start, unless the same child (same parent task) already exists."""
        record = record_from_start(start, self.clock.now())
        async with self.instances.lock(start.instance_id):
            existing = await self.store.create_child(record, start)
            if existing is None:
                start.stored = True
                self.instances.finished.forget(start.instance_id)
                self.route(start)  # in memory before the lock is let go
        if existing is not None and existing.runtime_status.is_terminal:
            self.route(child_outcome(self.clock.now(), existing))

    async def ensure_child(self, orch: Orchestration, task_id: int, task: PendingTask) -> None:
        """After a restart: create a child that was never stored, or hand over its outcome."""
        for message in self.child_starts(orch, Work(children=[(task_id, task)])):
            if message.event["EventType"] == EventType.ExecutionStarted:
                await self.create_child(message)
            else:
                self.route(message)
