"""An app for the functionTimeout and Durable HTTP tests (host.json: a 2-second functionTimeout,
two activities at once): functions that hang until a test lets them go, and HTTP routes that
`call_http` calls, one of which answers 202 with a Location a few times."""

import asyncio
import json
import os
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.actions import CallHttpAction
from azure.durable_functions.models.DurableHttpRequest import DurableHttpRequest

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
HOLD_SECONDS = 60  # how long a held function waits for its release before it gives up


def arrive(folder: str, kind: str) -> Path:
    """Leaves `<kind>-<pid>-<n>` in the folder (the test counts runs); the folder."""
    path = Path(folder)
    (path / f"{kind}-{os.getpid()}-{time.monotonic_ns()}").touch()
    return path


def released(folder: Path) -> bool:
    return (folder / "release").exists()


@app.activity_trigger(input_name="folder")
def Hang(folder: str) -> str:
    """Holds its thread until the test creates `release` (never, within a timeout)."""
    path = arrive(folder, "hung")
    deadline = time.monotonic() + HOLD_SECONDS
    while not released(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "released"


@app.activity_trigger(input_name="folder")
async def HangAsync(folder: str) -> str:
    path = arrive(folder, "hung")
    deadline = time.monotonic() + HOLD_SECONDS
    while not released(path) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return "released"


@app.activity_trigger(input_name="value")
def Echo(value: str) -> str:
    return value


@app.orchestration_trigger(context_name="context")
def CallOne(context: df.DurableOrchestrationContext):
    """[activity, input, attempts]: more than one attempt retries after a second."""
    name, value, attempts = context.get_input()
    if attempts > 1:
        retry = df.RetryOptions(
            first_retry_interval_in_milliseconds=1000, max_number_of_attempts=attempts
        )
        return (yield context.call_activity_with_retry(name, retry, value))
    return (yield context.call_activity(name, value))


@app.orchestration_trigger(context_name="context")
def Chain(context: df.DurableOrchestrationContext):
    """Echo, one after another, `count` times."""
    count = context.get_input()
    results = []
    for step in range(count):
        results.append((yield context.call_activity("Echo", str(step))))
    return len(results)


@app.orchestration_trigger(context_name="context")
def SlowEpisode(context: df.DurableOrchestrationContext):
    """An episode that takes longer than the limit (in-process it cannot be stopped)."""
    time.sleep(2.2)  # devhost: allow-nondeterminism (slow on purpose: the limit is the test)
    return "too late"


@app.orchestration_trigger(context_name="context")
def CallHttp(context: df.DurableOrchestrationContext):
    """{method, uri, content, headers, token}: the response of call_http."""
    request = context.get_input()
    token = request.get("token")
    source = df.ManagedIdentityTokenSource(token) if token else None
    return (
        yield context.call_http(
            request["method"],
            request["uri"],
            request.get("content"),
            request.get("headers"),
            source,
        )
    )


class PollingRequest(DurableHttpRequest):
    """A request that asks for the asynchronous pattern, as SDK 2.x and the JS SDK can; SDK 1.x
    has no parameter for it."""

    def to_json(self):
        return {**super().to_json(), "asynchronousPatternEnabled": True}


@app.orchestration_trigger(context_name="context")
def PollHttp(context: df.DurableOrchestrationContext):
    return (
        yield context._generate_task(CallHttpAction(PollingRequest("GET", context.get_input())))
    )


@app.route(route="echo", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Answers `?status=` (200) with what it received, and an X-Answer header."""
    body = {
        "method": req.method,
        "body": req.get_body().decode(),
        "x-test": req.headers.get("x-test"),
        "content-type": req.headers.get("content-type"),
    }
    return func.HttpResponse(
        json.dumps(body),
        status_code=int(req.params.get("status", "200")),
        headers={"X-Answer": "yes"},
        mimetype="application/json",
    )


@app.route(route="job", methods=["GET"])
def job(req: func.HttpRequest) -> func.HttpResponse:
    """202 with a Location to itself and Retry-After 1 while `left` polls remain; then 200."""
    left = int(req.params.get("left", "0"))
    if left <= 0:
        return func.HttpResponse(json.dumps({"done": True}), mimetype="application/json")
    location = req.url.split("?")[0] + f"?left={left - 1}"
    return func.HttpResponse(status_code=202, headers={"Location": location, "Retry-After": "1"})


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> str:
    """Records each call in `?folder=`, then answers once the test creates `release`."""
    path = arrive(req.params["folder"], "hit")
    deadline = time.monotonic() + HOLD_SECONDS
    while not released(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "slow done"


@app.route(route="hang", methods=["GET"])
def hang(req: func.HttpRequest) -> str:
    """Holds its thread until the test creates `release` in `?folder=`."""
    path = arrive(req.params["folder"], "hung")
    deadline = time.monotonic() + HOLD_SECONDS
    while not released(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "released"


@app.route(route="pid", methods=["GET"])
def pid(req: func.HttpRequest) -> str:
    return str(os.getpid())
