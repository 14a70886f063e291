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
from ..taskhub.errors import EngineError, InstanceStatusError
from ..taskhub.history import EventType
from ..taskhub.model import TERMINAL_STATUSES, InstanceQuery, RuntimeStatus
from . import codec
from .proto import pb

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # a time before it means "at once"


def time_of(message: Any, name: str) -> datetime | None:
    """A Timestamp field as an aware datetime, None when the field is absent; a time out of
    Timestamp's range is refused (400), one before 1970 is taken as 1970: already past."""
    if not message.HasField(name):
        return None
    try:
        return max(getattr(message, name).ToDatetime(tzinfo=UTC), EARLIEST)
    except (ValueError, OverflowError):
        raise EngineError(400, f"'{name}' is not a valid time.") from None


def statuses_of(values: Any) -> set[RuntimeStatus] | None:
    """A query's runtime statuses (None: any); a number that is no status is refused (400)."""
    try:
        return {codec.STATUS_FROM_PROTO[value] for value in values} or None
    except KeyError as err:
        raise EngineError(400, f"{err.args[0]} is not an orchestration status.") from None


def page_size(value: int) -> int | None:
    """A page size (0: the store's default); a negative one is refused (400)."""
    if value < 0:
        raise EngineError(400, f"A page size must not be negative (got {value}).")
    return value or None


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
    statuses = statuses_of(wanted.runtimeStatus) or set()
    query = InstanceQuery(
        runtime_status=(statuses or set(TERMINAL_STATUSES)) & set(TERMINAL_STATUSES),
        created_from=time_of(wanted, "createdTimeFrom"),
        created_to=time_of(wanted, "createdTimeTo"),
        orchestrations_only=True,
    )
    return (await matching(engine.query, query)).ids
