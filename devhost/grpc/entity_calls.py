"""The sidecar's entity RPCs: a client's signals, reads, queries and clean-up, and a worker's
answers to entity work items. Entities are the engine's (`engine/entity_runtime.py`), the same
ones a Durable Functions app's entities are: one store, one queue and lock per entity.
"""

from __future__ import annotations

from typing import Any

import grpc

from ..engine.engine import Engine
from ..engine.entities import entity_id_parts
from ..engine.entity_runtime import EntityView
from ..taskhub.errors import EngineError
from ..taskhub.model import InstanceQuery, InstanceRecord
from . import codec
from .client_calls import time_of
from .entity_codec import sdk_entity_id
from .hubs import Hub
from .proto import pb
from .rpc_errors import rpc

CLEAN_PAGE = 500


def entity_id(text: str) -> str:
    """`@name@key` as the engine keys it (the name in lower case); bad ids are refused."""
    target = sdk_entity_id(text)
    if target is None:
        raise EngineError(
            400, f"'{text}' is not an entity id: it has the form @name@key, with no '@' in either."
        )
    return target


def entity_metadata(view: EntityView, with_state: bool) -> pb.EntityMetadata:
    record = view.record
    metadata = pb.EntityMetadata(
        instanceId=record.instance_id,
        lastModifiedTime=codec.timestamp(record.last_updated_time),
        backlogQueueSize=view.waiting,
        lockedBy=codec.text_value(record.entity_lock),
    )
    if with_state and record.entity_state is not None:
        metadata.serializedState.value = record.entity_state
    return metadata


def _in_window(record: InstanceRecord, query: pb.EntityQuery) -> bool:
    since, until = time_of(query, "lastModifiedFrom"), time_of(query, "lastModifiedTo")
    moment = record.last_updated_time
    return (since is None or moment >= since) and (until is None or moment <= until)


async def _all_entity_ids(engine: Engine) -> list[str]:
    """Every entity's id, page by page, before anything is changed."""
    ids: list[str] = []
    token = None
    while True:
        records, token = await engine.query(
            InstanceQuery(instance_id_prefix="@"), CLEAN_PAGE, token
        )
        ids += [record.instance_id for record in records]
        if not token:
            return ids


class EntityCalls:
    """The entity RPCs of `SidecarService` (which supplies `_hub` and `_settle`)."""

    async def _hub(self, context: grpc.aio.ServicerContext) -> Hub: ...

    async def _settle(
        self, context: grpc.aio.ServicerContext, token: str, response: Any
    ) -> None: ...

    async def _engine(self, context: grpc.aio.ServicerContext) -> Engine:
        return (await self._hub(context)).engine

    @rpc
    async def SignalEntity(self, request: pb.SignalEntityRequest, context):
        """Stored before the answer; a scheduled signal waits in the entity's queue until its
        time; the SDK's request id makes a retried call count once."""
        target = entity_id(request.instanceId)
        name, key = entity_id_parts(target)
        due = time_of(request, "scheduledTime")
        await (await self._engine(context)).signal_entity(
            name, key, request.name, codec.optional_text(request, "input"), due, request.requestId
        )
        return pb.SignalEntityResponse()

    @rpc
    async def GetEntity(self, request: pb.GetEntityRequest, context):
        """An entity exists while it has state (as in the SDK's backends)."""
        view = await (await self._engine(context)).entity_view(entity_id(request.instanceId))
        if view is None or view.record.entity_state is None:
            return pb.GetEntityResponse(exists=False)
        return pb.GetEntityResponse(exists=True, entity=entity_metadata(view, request.includeState))

    @rpc
    async def QueryEntities(self, request: pb.QueryEntitiesRequest, context):
        """Entities by id prefix and last-modified window, a page at a time; those without
        state (transient: only locked, or only with requests waiting) if asked for."""
        engine = await self._engine(context)
        wanted = request.query
        prefix = codec.optional_text(wanted, "instanceIdStartsWith") or "@"
        if not prefix.startswith("@"):
            prefix = "@" + prefix
        name, at, key = prefix[1:].partition("@")
        prefix = f"@{name.lower()}{at}{key}"
        page = wanted.pageSize.value if wanted.HasField("pageSize") else None
        if page is not None and page < 0:
            raise EngineError(400, f"An entity query's page size must not be negative ({page}).")
        records, token = await engine.query(
            InstanceQuery(instance_id_prefix=prefix),
            page or None,
            codec.optional_text(wanted, "continuationToken"),
        )
        entities = []
        for record in records:
            view = await engine.entity_view(record.instance_id)
            if view is None or not _in_window(view.record, wanted):
                continue
            if view.record.entity_state is None and not wanted.includeTransient:
                continue
            entities.append(entity_metadata(view, wanted.includeState))
        return pb.QueryEntitiesResponse(
            entities=entities, continuationToken=codec.text_value(token)
        )

    @rpc
    async def CleanEntityStorage(self, request: pb.CleanEntityStorageRequest, context):
        """Releases locks whose orchestration has finished or is gone, and deletes entities
        with no state, no lock and nothing waiting; the whole hub in one call. The ids are
        read over every page first: a store's pages may be offsets, which a removal moves."""
        engine = await self._engine(context)
        removed = released = 0
        for entity in await _all_entity_ids(engine):
            view = await engine.entity_view(entity)
            if view is None:
                continue
            holder = view.record.entity_lock
            if request.releaseOrphanedLocks and holder is not None:
                status = await engine.get_status(holder)
                if status is None or status.runtime_status.is_terminal:
                    await engine.release_entity_lock(entity, holder)
                    released += 1
                    continue
            if request.removeEmptyEntities:
                removed += await engine.remove_empty_entity(entity)
        return pb.CleanEntityStorageResponse(
            emptyEntitiesRemoved=removed, orphanedLocksReleased=released
        )

    @rpc
    async def CompleteEntityTask(self, request: pb.EntityBatchResult, context):
        await self._settle(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    @rpc
    async def AbandonTaskEntityWorkItem(self, request: pb.AbandonEntityTaskRequest, context):
        (await self._hub(context)).dispatcher.abandon(request.completionToken)
        return pb.AbandonEntityTaskResponse()
