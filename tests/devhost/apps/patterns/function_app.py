"""An app written only against the SDK's public API, exercising every Durable Functions pattern."""

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class Attempts:
    """Calls of Flaky per key, in files: a retry may run in another worker process. The folder
    is chosen by the first process that loads the app and inherited by the workers it starts."""

    def __init__(self) -> None:
        folder = os.environ.setdefault("PATTERNS_ATTEMPTS_DIR", tempfile.mkdtemp())
        self.folder = Path(folder)

    def get(self, key: str, default: int = 0) -> int:
        path = self.folder / key
        return int(path.read_text()) if path.exists() else default

    def __getitem__(self, key: str) -> int:
        if not (self.folder / key).exists():
            raise KeyError(key)
        return self.get(key)

    def __setitem__(self, key: str, count: int) -> None:
        (self.folder / key).write_text(str(count))

    def pop(self, key: str, default: int | None = None) -> int | None:
        count = self.get(key, default)
        (self.folder / key).unlink(missing_ok=True)
        return count


attempts = Attempts()


# -- HTTP ---------------------------------------------------------------------------------------


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"], req.params.get("id"), json.loads(body) if body else None
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="echo/{id:int}/{rest?}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "route": dict(req.route_params),
        "query": dict(req.params),
        "header": req.headers.get("x-test"),
        "body": req.get_body().decode(),
        "url": req.url,
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"X-Echo": "yes"}
    )


@app.route(route="boom")
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


# -- activities ---------------------------------------------------------------------------------


@app.activity_trigger(input_name="name")
def Hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
async def Double(value: int) -> int:
    return value * 2


@app.activity_trigger(input_name="value")
def Fail(value: str) -> str:
    raise ValueError(f"cannot handle {value}")


@app.activity_trigger(input_name="key")
def Flaky(key: str) -> str:
    """Fails the first two times it is called for a key."""
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise RuntimeError(f"attempt {attempts[key]} failed")
    return f"{key} succeeded on attempt {attempts[key]}"


@app.activity_trigger(input_name="name")
@app.durable_client_input(client_name="client")
async def StartFromActivity(name: str, client: df.DurableOrchestrationClient) -> str:
    return await client.start_new("Sequence", None, name)


# -- orchestrators ------------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def Sequence(context: df.DurableOrchestrationContext):
    city = context.get_input() or "Tokyo"
    results = []
    for suffix in ("", " North", " South"):
        results.append((yield context.call_activity("Hello", city + suffix)))
    return results


@app.orchestration_trigger(context_name="context")
def Chain(context: df.DurableOrchestrationContext):
    value = 1
    for _ in range(int(context.get_input())):
        value = yield context.call_activity("Double", 1)
    return value


@app.orchestration_trigger(context_name="context")
def FanOut(context: df.DurableOrchestrationContext):
    count = int(context.get_input())
    results = yield context.task_all([context.call_activity("Double", i) for i in range(count)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def Timer(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(seconds=int(context.get_input())))
    return (context.current_utc_datetime - started).total_seconds()


@app.orchestration_trigger(context_name="context")
def Approval(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(minutes=2)
    timer = context.create_timer(deadline)
    approval = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval, timer])
    if winner == approval:
        timer.cancel()
        return f"approved: {approval.result}"
    return "timed out"


@app.orchestration_trigger(context_name="context")
def Collect(context: df.DurableOrchestrationContext):
    items = []
    for _ in range(3):
        items.append((yield context.wait_for_external_event("Item")))
    return items


@app.orchestration_trigger(context_name="context")
def BothEvents(context: df.DurableOrchestrationContext):
    first = context.wait_for_external_event("A")
    second = context.wait_for_external_event("B")
    results = yield context.task_all([first, second])
    return results


@app.orchestration_trigger(context_name="context")
def Child(context: df.DurableOrchestrationContext):
    value = context.get_input()
    doubled = yield context.call_activity("Double", value)
    return {"child": context.instance_id, "parent": context.parent_instance_id, "value": doubled}


@app.orchestration_trigger(context_name="context")
def Parent(context: df.DurableOrchestrationContext):
    named = yield context.call_sub_orchestrator("Child", 1, f"{context.instance_id}-named")
    generated = yield context.call_sub_orchestrator("Child", 2)
    return [named, generated]


@app.orchestration_trigger(context_name="context")
def Failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("Hello", "before failing")
    raise ValueError("the orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def ParentOfFailing(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("Failing")
    except Exception as err:
        return f"caught: {err}"
    return "not reached"


@app.orchestration_trigger(context_name="context")
def ActivityFails(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Fail", "this"))


@app.orchestration_trigger(context_name="context")
def CatchActivity(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("Fail", "that")
    except Exception as err:
        return str(err)


@app.orchestration_trigger(context_name="context")
def Retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    first = yield context.call_activity("Hello", "before")
    retried = yield context.call_activity_with_retry("Flaky", options, context.get_input())
    after = yield context.call_activity("Hello", "after")
    return [first, retried, after]


@app.orchestration_trigger(context_name="context")
def RetryExhausted(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("Fail", options, "always")
    except Exception as err:
        return f"gave up: {err}"


@app.orchestration_trigger(context_name="context")
def FlakyChild(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Flaky", context.get_input()))


@app.orchestration_trigger(context_name="context")
def SubRetry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)
    return (
        yield context.call_sub_orchestrator_with_retry(
            "FlakyOrchestrator", options, context.get_input()
        )
    )


@app.orchestration_trigger(context_name="context")
def FlakyOrchestrator(context: df.DurableOrchestrationContext):
    key = context.get_input()
    result = yield context.call_activity("Flaky", key)
    return result


@app.orchestration_trigger(context_name="context")
def Counter(context: df.DurableOrchestrationContext):
    state = context.get_input() or {"generation": 0, "pings": []}
    ping = yield context.wait_for_external_event("Ping")
    state["pings"].append(ping)
    state["generation"] += 1
    if state["generation"] < 3:
        context.continue_as_new(state)
        return None
    return state


@app.orchestration_trigger(context_name="context")
def Countdown(context: df.DurableOrchestrationContext):
    remaining = int(context.get_input())
    if remaining > 0:
        yield context.call_activity("Double", remaining)
        context.continue_as_new(remaining - 1)
        return None
    return "liftoff"


@app.orchestration_trigger(context_name="context")
def Status(context: df.DurableOrchestrationContext):
    context.set_custom_status({"step": 1})
    yield context.wait_for_external_event("Go")
    context.set_custom_status({"step": 2})
    yield context.call_activity("Hello", "status")
    return "done"


@app.orchestration_trigger(context_name="context")
def Replay(context: df.DurableOrchestrationContext):
    """Values that must be identical on every replay of the same point."""
    first_time = context.current_utc_datetime.isoformat()
    first_uuid = context.new_uuid()
    replaying_before = context.is_replaying
    yield context.call_activity("Hello", "replay")
    second_time = context.current_utc_datetime.isoformat()
    second_uuid = context.new_uuid()
    return {
        "first_time": first_time,
        "first_uuid": first_uuid,
        "second_time": second_time,
        "second_uuid": second_uuid,
        "replaying_before": replaying_before,
        "replaying_after": context.is_replaying,
    }


@app.orchestration_trigger(context_name="context")
def Waiter(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Never")
    return value


@app.orchestration_trigger(context_name="context")
def Starter(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("StartFromActivity", context.get_input()))


@app.orchestration_trigger(context_name="context")
def ParallelRetry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    key = context.get_input()
    results = yield context.task_all(
        [
            context.call_activity("Hello", "one"),
            context.call_activity_with_retry("Flaky", options, key),
            context.call_activity("Hello", "two"),
            context.call_activity_with_retry("Flaky", options, key + "-b"),
        ]
    )
    last = yield context.call_activity("Hello", "last")
    return [*results, last]


# -- entities -----------------------------------------------------------------------------------


@app.entity_trigger(context_name="context")
def Tally(context: df.DurableEntityContext):
    state = context.get_state(lambda: {"total": 0, "seen": []})
    operation = context.operation_name
    if operation == "add":
        value = context.get_input()
        state["total"] += value
        state["seen"].append(value)
    elif operation == "get":
        context.set_result(state["total"])
    elif operation == "explode":
        state["total"] = -1000
        context.set_state(state)
        raise ValueError("the counter exploded")
    elif operation == "delete":
        context.destruct_on_exit()
        return
    context.set_state(state)


@app.orchestration_trigger(context_name="context")
def TallyUser(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Tally", context.get_input())
    for value in (1, 2, 3):
        context.signal_entity(counter, "add", value)
    total = yield context.call_entity(counter, "get")
    try:
        yield context.call_entity(counter, "explode")
        failure = None
    except Exception as err:
        failure = str(err)
    after = yield context.call_entity(counter, "get")
    return {"total": total, "failure": failure, "after": after}


# -- payload sizes ------------------------------------------------------------------------------


@app.activity_trigger(input_name="size")
def Big(size: int) -> str:
    return "x" * size


@app.orchestration_trigger(context_name="context")
def BigOutput(context: df.DurableOrchestrationContext):
    text = yield context.call_activity("Big", context.get_input())
    return text


@app.orchestration_trigger(context_name="context")
def BigStatus(context: df.DurableOrchestrationContext):
    context.set_custom_status("s" * context.get_input())
    yield context.wait_for_external_event("Never")


@app.orchestration_trigger(context_name="context")
def WaitingParent(context: df.DurableOrchestrationContext):
    """A child that waits for an event, which a client may raise while the child is created."""
    return (yield context.call_sub_orchestrator("Waiter", None, f"{context.instance_id}-child"))
