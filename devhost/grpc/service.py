"""`TaskHubSidecarService` over devhost's engine: each RPC is a call of the engine's public API.

Client calls (start, status, events, control, queries, purge) map one to one onto `Engine`
methods; the engine's refusals (an `EngineError` with its HTTP status) become gRPC status codes
with the same sentence. Work items flow through `WorkDispatcher`: `GetWorkItems` streams what
the engine's runner submits, and the `Complete*` and `Abandon*` calls hand the answers back.
Every RPC devhost does not serve answers UNIMPLEMENTED with a sentence saying so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from ..engine.replay import EncodedText
from ..taskhub.errors import EngineError
from ..taskhub.model import TERMINAL_STATUSES, InstanceQuery, InstanceRecord, RuntimeStatus
from . import codec, instance_state
from .client_calls import (
    children,
    idempotent,
    matching_ids,
    page_size,
    statuses_of,
    time_of,
    with_descendants,
)
from .entity_calls import EntityCalls
from .hubs import Hub, HubDirectory, HubRefused
from .proto import pb, stubs
from .rpc_errors import rpc
from .work_items import WorkerStream

log = logging.getLogger("devhost.grpc")
HEALTH_PING_SECONDS = 30  # a worker reconnects after 120 s of silence on its stream
HISTORY_CHUNK = 200  # events per StreamInstanceHistory message
NO_DEADLINE_WAIT = 24 * 3600.0  # a wait without a gRPC deadline: until the client goes away

NOT_SERVED = {
    "CreateTaskHub": "creating task hubs (a hub opens when a call first names it)",
    "DeleteTaskHub": "deleting task hubs (purge the instances instead)",
}


def _text(message: Any, name: str) -> str | None:
    return codec.optional_text(message, name)


def _instance_response(record: InstanceRecord | None, payloads: bool) -> pb.GetInstanceResponse:
    if record is None or record.is_entity:
        return pb.GetInstanceResponse(exists=False)
    return pb.GetInstanceResponse(
        exists=True, orchestrationState=instance_state.orchestration_state(record, payloads)
    )


class SidecarService(EntityCalls, stubs.TaskHubSidecarServiceServicer):
    """The service a `durabletask` client and worker talk to, for the hubs in `hubs`."""

    def __init__(self, hubs: HubDirectory) -> None:
        self.hubs = hubs

    async def _hub(self, context: grpc.aio.ServicerContext) -> Hub:
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        return await self.hubs.get(metadata)

    # -- clients: starting and reading instances -------------------------------------------

    @rpc
    async def Hello(self, request: empty_pb2.Empty, context) -> empty_pb2.Empty:
        await self._hub(context)
        return empty_pb2.Empty()

    @rpc
    async def StartInstance(self, request: pb.CreateInstanceRequest, context):
        engine = (await self._hub(context)).engine
        instance_id = request.instanceId or None
        if instance_id is not None:
            existing = await engine.get_status(instance_id)
            replaceable = set(request.orchestrationIdReusePolicy.replaceableStatus)
            if existing is not None and (
                not existing.runtime_status.is_terminal
                or codec.STATUS_TO_PROTO[existing.runtime_status] not in replaceable
            ):
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"An orchestration instance with the id '{instance_id}' already exists "
                    f"({existing.runtime_status}).",
                )
        try:
            started = await engine.start_new(
                request.name,
                instance_id,
                _text(request, "input"),
                instance_state.start_options(request),
            )
        except EngineError as err:
            if err.status != 409:
                raise
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(err))
        return pb.CreateInstanceResponse(instanceId=started)

    @rpc
    async def GetInstance(self, request: pb.GetInstanceRequest, context):
        engine = (await self._hub(context)).engine
        record = await engine.get_status(request.instanceId)
        return _instance_response(record, request.getInputsAndOutputs)

    @rpc
    async def WaitForInstanceStart(self, request: pb.GetInstanceRequest, context):
        started = set(RuntimeStatus) - {RuntimeStatus.Pending}
        return await self._wait(request, context, started, "start")

    @rpc
    async def WaitForInstanceCompletion(self, request: pb.GetInstanceRequest, context):
        return await self._wait(request, context, set(TERMINAL_STATUSES), "complete")

    async def _wait(
        self,
        request: pb.GetInstanceRequest,
        context: grpc.aio.ServicerContext,
        statuses: set[RuntimeStatus],
        verb: str,
    ) -> pb.GetInstanceResponse:
        """Wait on the engine's status notifications (no thread, no polling) until the instance
        reaches `statuses`, within the call's deadline."""
        engine = (await self._hub(context)).engine
        await engine.get_status(request.instanceId)  # checks the id as the runtime does
        remaining = context.time_remaining()
        timeout = NO_DEADLINE_WAIT if remaining is None else max(remaining - 0.05, 0)
        record = await engine.wait_for_status(request.instanceId, statuses, timeout)
        if record is not None and record.runtime_status not in statuses:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Timed out waiting for instance '{request.instanceId}' to {verb}.",
            )
        return _instance_response(record, request.getInputsAndOutputs)

    @rpc
    async def StreamInstanceHistory(
        self, request: pb.StreamInstanceHistoryRequest, context
    ) -> None:
        engine = (await self._hub(context)).engine
        if await engine.get_status(request.instanceId) is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"No instance with ID '{request.instanceId}' found."
            )
        history = await engine.get_history(request.instanceId)
        for start in range(0, max(len(history), 1), HISTORY_CHUNK):
            chunk = history[start : start + HISTORY_CHUNK]
            await context.write(pb.HistoryChunk(events=[codec.history_event(e) for e in chunk]))

    # -- clients: events and control ---------------------------------------------------------

    @rpc
    async def RaiseEvent(self, request: pb.RaiseEventRequest, context):
        engine = (await self._hub(context)).engine
        try:
            await engine.raise_event(request.instanceId, request.name, _text(request, "input"))
        except EngineError as err:
            if err.status != 410:  # a finished instance drops the event, as the SDK's backends do
                raise
        return pb.RaiseEventResponse()

    @rpc
    async def TerminateInstance(self, request: pb.TerminateRequest, context):
        engine = (await self._hub(context)).engine
        output = _text(request, "output")
        reason = None if output is None else EncodedText(output)
        await self._terminate(engine, request.instanceId, reason, request.recursive)
        return pb.TerminateResponse()

    async def _terminate(self, engine, instance_id: str, reason: Any, recursive: bool) -> None:
        try:
            await engine.terminate(instance_id, reason)
        except EngineError as err:
            if err.status != 410:  # already finished: nothing to terminate
                raise
        if recursive:
            for child in await children(engine, instance_id):
                try:
                    await self._terminate(engine, child, reason, recursive)
                except EngineError as err:
                    if err.status != 404:  # a child that was never created
                        raise

    @rpc
    async def SuspendInstance(self, request: pb.SuspendRequest, context):
        engine = (await self._hub(context)).engine
        await idempotent(engine.suspend(request.instanceId, _text(request, "reason") or ""))
        return pb.SuspendResponse()

    @rpc
    async def ResumeInstance(self, request: pb.ResumeRequest, context):
        engine = (await self._hub(context)).engine
        await idempotent(engine.resume(request.instanceId, _text(request, "reason") or ""))
        return pb.ResumeResponse()

    @rpc
    async def RestartInstance(self, request: pb.RestartInstanceRequest, context):
        engine = (await self._hub(context)).engine
        record = await engine.get_status(request.instanceId)
        if record is not None and not record.runtime_status.is_terminal:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Orchestration instance '{request.instanceId}' is not in a terminal state "
                f"({record.runtime_status}).",
            )
        instance_id = await engine.restart(request.instanceId, request.restartWithNewInstanceId)
        return pb.RestartInstanceResponse(instanceId=instance_id)

    @rpc
    async def RewindInstance(self, request: pb.RewindInstanceRequest, context):
        engine = (await self._hub(context)).engine
        await engine.rewind(request.instanceId, _text(request, "reason") or "")
        return pb.RewindInstanceResponse()

    # -- clients: queries and purges -----------------------------------------------------------

    @rpc
    async def QueryInstances(self, request: pb.QueryInstancesRequest, context):
        engine = (await self._hub(context)).engine
        wanted = request.query
        query = InstanceQuery(
            runtime_status=statuses_of(wanted.runtimeStatus),
            created_from=time_of(wanted, "createdTimeFrom"),
            created_to=time_of(wanted, "createdTimeTo"),
            instance_id_prefix=_text(wanted, "instanceIdPrefix"),
            orchestrations_only=True,
        )
        records, token = await engine.query(
            query, page_size(wanted.maxInstanceCount), _text(wanted, "continuationToken")
        )
        return pb.QueryInstancesResponse(
            orchestrationState=[
                instance_state.orchestration_state(r, wanted.fetchInputsAndOutputs) for r in records
            ],
            continuationToken=codec.text_value(token),
        )

    @rpc
    async def ListInstanceIds(self, request: pb.ListInstanceIdsRequest, context):
        """Instance ids page by page; the completed-time bounds apply to finished instances'
        last update (the engine keeps no separate completion time)."""
        engine = (await self._hub(context)).engine
        query = InstanceQuery(
            runtime_status=statuses_of(request.runtimeStatus),
            orchestrations_only=True,
        )
        records, token = await engine.query(
            query, page_size(request.pageSize), _text(request, "lastInstanceKey")
        )
        since = time_of(request, "completedTimeFrom")
        until = time_of(request, "completedTimeTo")
        ids = [
            r.instance_id
            for r in records
            if (since is None or r.last_updated_time >= since)
            and (until is None or r.last_updated_time <= until)
            and (not (since or until) or r.runtime_status.is_terminal)
        ]
        return pb.ListInstanceIdsResponse(instanceIds=ids, lastInstanceKey=codec.text_value(token))

    @rpc
    async def PurgeInstances(self, request: pb.PurgeInstancesRequest, context):
        engine = (await self._hub(context)).engine
        if request.HasField("purgeInstanceFilter"):
            ids = await matching_ids(engine, request.purgeInstanceFilter)
        else:
            ids = [request.instanceId]
        if request.recursive:
            ids = [d for i in ids for d in await with_descendants(engine, i)]
        deleted = await engine.purge(list(dict.fromkeys(ids)))
        return pb.PurgeInstancesResponse(
            deletedInstanceCount=deleted, isComplete=wrappers_pb2.BoolValue(value=True)
        )

    # -- workers -------------------------------------------------------------------------------

    async def GetWorkItems(
        self, request: pb.GetWorkItemsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WorkItem]:
        """The worker's stream: items as the dispatcher assigns them, a health ping when idle;
        when the stream ends, whatever the worker held goes to the next worker."""
        try:
            hub = await self._hub(context)
        except HubRefused as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        worker = WorkerStream.from_request(request)
        hub.dispatcher.connect(worker)
        log.info("A worker connected to hub '%s' (%d connected)", hub.name, hub.dispatcher.workers)
        try:
            while True:
                worker.wake.clear()  # before draining: an item added meanwhile sets it again
                while worker.outbox:
                    yield worker.outbox.popleft().message
                try:
                    async with asyncio.timeout(HEALTH_PING_SECONDS):  # no task per wait
                        await worker.wake.wait()
                except TimeoutError:
                    yield pb.WorkItem(healthPing=pb.HealthPing())
        finally:
            hub.dispatcher.disconnect(worker)
            log.info("A worker left hub '%s' (%d connected)", hub.name, hub.dispatcher.workers)

    @rpc
    async def CompleteOrchestratorTask(self, request: pb.OrchestratorResponse, context):
        await self._settle(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    @rpc
    async def CompleteActivityTask(self, request: pb.ActivityResponse, context):
        await self._settle(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    async def _settle(self, context, token: str, response: Any) -> None:
        """An answer for a held item; an unknown token (the item went to another worker after
        this one was taken for gone) is dropped, as the SDK's backends drop stale answers."""
        hub = await self._hub(context)
        if not hub.dispatcher.complete(token, response):
            log.info("Dropped a stale answer (completion token %s)", token)

    @rpc
    async def AbandonTaskOrchestratorWorkItem(
        self, request: pb.AbandonOrchestrationTaskRequest, context
    ):
        (await self._hub(context)).dispatcher.abandon(request.completionToken)
        return pb.AbandonOrchestrationTaskResponse()

    @rpc
    async def AbandonTaskActivityWorkItem(self, request: pb.AbandonActivityTaskRequest, context):
        (await self._hub(context)).dispatcher.abandon(request.completionToken)
        return pb.AbandonActivityTaskResponse()


def _not_served(name: str, what: str) -> Callable[..., Awaitable[None]]:
    async def method(self: SidecarService, request: Any, context: grpc.aio.ServicerContext):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"devhost's gRPC sidecar does not serve {name} ({what}) yet.",
        )

    method.__name__ = name
    return method


for _name in dir(stubs.TaskHubSidecarServiceServicer):
    served = _name in SidecarService.__dict__ or _name in EntityCalls.__dict__
    if _name[:1].isupper() and not served:
        setattr(SidecarService, _name, _not_served(_name, NOT_SERVED.get(_name, "this call")))
