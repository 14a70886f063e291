"""What some client RPCs need beyond one engine call: the instances an instance's execution
created (recursive terminate and purge), the ids a purge filter matches, and the SDK backends'
leniency about suspending a suspended instance."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from ..engine.engine import Engine
from ..engine.purge_filter import matching
from ..taskhub.errors import InstanceStatusError
from ..taskhub.history import EventType
from ..taskhub.model import TERMINAL_STATUSES, InstanceQuery
from . import codec
from .proto import pb


def time_of(message: Any, name: str) -> datetime | None:
    """A Timestamp field as an aware datetime, None when the field is absent."""
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


async def idempotent(operation: Awaitable[None]) -> None:
    """Suspending a suspended instance (or resuming a running one) changes nothing, as in the
    SDK's backends: the engine's refusal of it is not an error here."""
    with contextlib.suppress(InstanceStatusError):
        await operation


async def children(engine: Engine, instance_id: str) -> list[str]:
    """Sub-orchestrations the instance's current execution created."""
    return [
        evt["InstanceId"]
        for evt in await engine.get_history(instance_id)
        if evt["EventType"] == EventType.SubOrchestrationInstanceCreated
    ]


async def with_descendants(engine: Engine, instance_id: str) -> list[str]:
    ids = [instance_id]
    for child in await children(engine, instance_id):
        ids.extend(await with_descendants(engine, child))
    return ids


async def matching_ids(engine: Engine, wanted: pb.PurgeInstanceFilter) -> list[str]:
    statuses = {codec.STATUS_FROM_PROTO[s] for s in wanted.runtimeStatus}
    query = InstanceQuery(
        runtime_status=(statuses or set(TERMINAL_STATUSES)) & set(TERMINAL_STATUSES),
        created_from=time_of(wanted, "createdTimeFrom"),
        created_to=time_of(wanted, "createdTimeTo"),
        orchestrations_only=True,
    )
    return (await matching(engine.query, query)).ids
