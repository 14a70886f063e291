"""An app for the crash tests: activities, timers, sub-orchestrations and events in flight."""

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="key")
def Record(key: str) -> str:
    """Leaves a line per run, so the test can see that every activity ran at least once."""
    with open(os.environ["CRASH_LOG"], "a", encoding="utf-8") as log:
        log.write(key + "\n")
    return key


@app.orchestration_trigger(context_name="context")
def Side(context: df.DurableOrchestrationContext):
    key = context.get_input()
    first = yield context.call_activity("Record", f"{key}:side")
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    return first


@app.orchestration_trigger(context_name="context")
def Quest(context: df.DurableOrchestrationContext):
    key = context.instance_id
    first = yield context.call_activity("Record", f"{key}:a")
    fan = yield context.task_all(
        [context.call_activity("Record", f"{key}:f{i}") for i in range(int(context.get_input()))]
    )
    child = yield context.call_sub_orchestrator("Side", key)
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    event = yield context.wait_for_external_event("Go")
    last = yield context.call_activity("Record", f"{key}:b")
    return {"a": first, "fan": len(fan), "child": child, "event": event, "b": last}


@app.entity_trigger(context_name="context")
def Tally(context: df.DurableEntityContext):
    context.set_state(context.get_state(lambda: 0) + context.get_input())


@app.orchestration_trigger(context_name="context")
def Looper(context: df.DurableOrchestrationContext):
    """Continues as new until it has counted down, one activity a generation."""
    remaining = int(context.get_input())
    if remaining == 0:
        return "looped"
    yield context.call_activity("Record", f"{context.instance_id}:{remaining}")
    context.continue_as_new(remaining - 1)
    return None


@app.activity_trigger(input_name="name")
@app.durable_client_input(client_name="client")
async def StartWhenTold(name: str, client: df.DurableOrchestrationClient) -> str:
    """Starts another workflow through the host, once the test has created the file `go`.

    The test kills the host while this waits: after the restart it runs again, during recovery.
    """
    folder = Path(os.environ["CRASH_LOG"]).parent
    (folder / "waiting").touch()
    while not (folder / "go").exists():
        await asyncio.sleep(0.02)
    return await client.start_new("Looper", f"{name}-started", 1)


@app.orchestration_trigger(context_name="context")
def Relay(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("StartWhenTold", context.instance_id))
