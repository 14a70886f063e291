"""Where the engine's user code runs, as the engine sees it.

The engine hands every orchestrator episode, entity batch and activity to an object with these
methods; `devhost.runner`'s runners (this process, or worker processes) satisfy it from the layer
above, so the engine never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..app.invoke import ActivityOutcome
from ..taskhub.model import InstanceRecord
from .entities import EntityRequest, OperationOutcome
from .replay import EpisodeCall, ReplayResult

ActivityDone = Callable[[ActivityOutcome], None]


@dataclass(frozen=True)
class ActivityTask:
    """The orchestration task an activity runs for: a Durable Task worker's activity context
    shows the instance and task id, and its work-item filters may ask for a version."""

    instance_id: str
    execution_id: str
    task_id: int
    version: str | None = None


class UserCode(Protocol):
    """The runner's side the engine calls (see `devhost.runner.FunctionRunner`)."""

    def describe(self) -> str:
        """One line for the log: where functions run, and how orchestrations replay."""
        ...

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        """Run one episode of an orchestrator (its name is in the index)."""
        ...

    def discard(self, instance_id: str) -> None:
        """The instance has finished: forget what is kept for its next episode."""
        ...

    async def entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> list[OperationOutcome]:
        """Apply the operations in order to `record.entity_state`."""
        ...

    def waiting_for(self, instance_id: str) -> str | None:
        """What the instance's work waits for outside the engine, as a sentence; or None."""
        ...

    def start_activity(
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
    ) -> None:
        """Run an activity of the index; `done` is called on the loop with its outcome."""
        ...
