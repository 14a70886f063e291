"""A client's instances in the protocol's terms: a start request's options in, and an instance's
record out as the `OrchestrationState` that `GetInstance`, the waits and `QueryInstances` return.
"""

from __future__ import annotations

from ..taskhub.history import StartOptions
from ..taskhub.model import InstanceRecord, RuntimeStatus
from .client_calls import time_of
from .codec import STATUS_TO_PROTO, optional_text, output_failure, text_value, timestamp
from .proto import pb


def start_options(request: pb.CreateInstanceRequest) -> StartOptions:
    """A client's version, tags and scheduled start time, as the engine keeps them."""
    return StartOptions(
        version=optional_text(request, "version") or None,
        tags=dict(request.tags) or None,
        scheduled_start=time_of(request, "scheduledStartTimestamp"),
    )


def orchestration_state(record: InstanceRecord, with_payloads: bool) -> pb.OrchestrationState:
    status = record.runtime_status
    failed = status == RuntimeStatus.Failed
    parent = (record.parent or {}).get("OrchestrationInstance") or {}
    state = pb.OrchestrationState(
        instanceId=record.instance_id,
        name=record.name,
        orchestrationStatus=STATUS_TO_PROTO[status],
        createdTimestamp=timestamp(record.created_time),
        lastUpdatedTimestamp=timestamp(record.last_updated_time),
        executionId=text_value(record.execution_id),
        parentInstanceId=text_value(parent.get("InstanceId")),
        failureDetails=output_failure(record.output) if failed else None,
        version=text_value(record.version),
        tags=record.tags or {},
    )
    if record.scheduled_start is not None:
        state.scheduledStartTimestamp.CopyFrom(timestamp(record.scheduled_start))
    if status.is_terminal:
        state.completedTimestamp.CopyFrom(timestamp(record.last_updated_time))
    if with_payloads:
        for name, text in (
            ("input", record.input),
            ("output", None if failed else record.output),
            ("customStatus", record.custom_status),
        ):
            if text is not None:
                getattr(state, name).value = text
    elif record.custom_status is not None:
        state.customStatus.value = record.custom_status
    return state
