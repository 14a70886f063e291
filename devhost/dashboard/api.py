"""The dashboard: its page at /_devhost/ and the JSON it needs beyond the public DF HTTP API.

One sub-application, mounted by the host at DASHBOARD_PATH. `/_devhost/api/...` answers JSON,
read through the engine's public methods only, with the management API's error style
(`{"Message", "ExceptionMessage"}`, 503 with Retry-After when storage stays away). The page's
actions (raise event, terminate, suspend, resume, rewind, restart, purge) go to the public
Durable Functions HTTP API itself.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from ..engine.engine import Engine
from ..engine.entities import entity_id_parts
from ..http.management_api import MAX_PAGE, errors_middleware, parse_time
from ..status import api_time, status_json
from ..taskhub.errors import EngineError
from ..taskhub.history import EventType, format_time
from ..taskhub.model import InstanceQuery, InstanceRecord, RuntimeStatus
from ..taskhub.ordering import InstanceOrder
from .steps import decoded, steps
from .timeline import axis, bars

DASHBOARD_PATH = "/_devhost"
STATIC = Path(__file__).parent / "static"
DEFAULT_PAGE = 50


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _loads(text: str | None) -> Any:
    """A stored payload as its value; text that is not JSON (a Durable Task SDK may store a
    large-payload reference, or text it encoded itself) is shown as the text it is."""
    return decoded(text)


def instance_query(request: web.Request) -> InstanceQuery:
    """The list filters, named as the DF HTTP API names them, plus `name` (the orchestrator)."""
    statuses = request.query.get("runtimeStatus", "")
    try:
        runtime_status = {RuntimeStatus(s.strip()) for s in statuses.split(",") if s.strip()}
    except ValueError:
        raise EngineError(400, f"Unknown runtimeStatus in {statuses[:200]!r}") from None
    return InstanceQuery(
        runtime_status=runtime_status or None,
        created_from=parse_time(request.query.get("createdTimeFrom"), "createdTimeFrom"),
        created_to=parse_time(request.query.get("createdTimeTo"), "createdTimeTo"),
        instance_id_prefix=request.query.get("instanceIdPrefix") or None,
        name=request.query.get("name") or None,
        orchestrations_only=True,
    )


def _top(request: web.Request) -> int:
    text = request.query.get("top", "")
    if not text:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise EngineError(400, f"top must be a number from 1 to {MAX_PAGE}.")
    return int(text)


def _summary(record: InstanceRecord) -> dict[str, Any]:
    """A list row; `customStatus` is the start of its JSON text (`ordering.summary`)."""
    body = status_json(replace(record, custom_status=None), show_input=False)
    del body["input"], body["output"]
    body["customStatus"] = record.custom_status
    return body


def _timeline(
    history: list[dict[str, Any]],
    now: str,
    awaited: list[str] | None = None,
    continued: bool = False,
) -> dict[str, Any]:
    drawn = bars(history, awaited, continued)
    return {"bars": drawn, "axis": axis(drawn, now)}


def _retry_timers(waiting: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Name, on each timer waited on, the task whose next attempt it waits for, if any."""
    retries = {
        e["EventId"]: e["Retry"]
        for e in history
        if e["EventType"] == EventType.TimerCreated and e.get("Retry")
    }
    for timer in waiting["timers"]:
        if (retry := retries.get(timer["task"])) is not None:
            timer["retryOf"], timer["attempt"] = retry.get("Name"), retry.get("Attempt")


def _parent_id(record: InstanceRecord) -> str | None:
    if not record.parent:
        return None
    return record.parent.get("OrchestrationInstance", {}).get("InstanceId")


def _failure(record: InstanceRecord, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Why a failed instance failed: its output, and the failed task that caused it, if any."""
    if record.runtime_status != RuntimeStatus.Failed:
        return None
    failure: dict[str, Any] = {"message": _loads(record.output)}
    for evt in reversed(history):
        if evt["EventType"] in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            failure.update(task=evt.get("TaskScheduledId"), reason=evt.get("Reason"))
            failure["details"] = evt.get("Details")
            break
    return failure


def _execution_id(history: list[dict[str, Any]]) -> str | None:
    started = next((e for e in history if e["EventType"] == EventType.ExecutionStarted), None)
    return started["OrchestrationInstance"]["ExecutionId"] if started else None


def _history_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**evt, "EventType": EventType(evt["EventType"]).name} for evt in history]


@web.middleware
async def dashboard_paths(request: web.Request, handler) -> web.StreamResponse:
    """`/_devhost` goes to the page; anything else unknown is a 404 that names the dashboard."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path == DASHBOARD_PATH:
            return web.Response(status=302, headers={"Location": f"{DASHBOARD_PATH}/"})
        raise EngineError(404, f"No dashboard page or API route matches {request.path}.") from None


class DashboardApi:
    """The page and its JSON; `hub` and `store` are shown in the page's header."""

    def __init__(self, engine: Engine, hub: str, store: str, deadline: float) -> None:
        self.engine = engine
        self.hub = hub
        self.store = store
        self.deadline = deadline

    def app(self) -> web.Application:
        """The sub-application, to be mounted at DASHBOARD_PATH."""
        app = web.Application(middlewares=[errors_middleware(self.deadline), dashboard_paths])
        app.add_routes(
            [
                web.get("/", self.page),
                web.static("/static", STATIC),
                web.get("/api/hub", self.hub_info),
                web.delete("/api/hub", self.delete_hub),
                web.get("/api/instances", self.list_instances),
                web.get("/api/counts", self.counts),
                web.get("/api/instances/{instance_id:[\\s\\S]+}", self.instance),
                web.get("/api/entities", self.entities),
            ]
        )
        return app

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def hub_info(self, request: web.Request) -> web.Response:
        return _json({"hub": self.hub, "store": self.store})

    async def delete_hub(self, request: web.Request) -> web.Response:
        """Every instance and entity of the hub, for `durable delete-task-hub` through this
        host (the DF HTTP API purges finished orchestrations only)."""
        await self.engine.delete_hub()
        return _json({"hub": self.hub, "deleted": True})

    async def list_instances(self, request: web.Request) -> web.Response:
        """A page of orchestrations, newest first unless `sort` (createdTime, lastUpdatedTime,
        name, runtimeStatus) and `order` (asc, desc) say otherwise."""
        order = InstanceOrder.parse(request.query.get("sort"), request.query.get("order"))
        records, token = await self.engine.summaries(
            instance_query(request), order, _top(request), request.query.get("continuationToken")
        )
        return _json({"instances": [_summary(r) for r in records], "continuationToken": token})

    async def counts(self, request: web.Request) -> web.Response:
        return _json(await self.engine.count_by_status(instance_query(request)))

    async def instance(self, request: web.Request) -> web.Response:
        """Everything the instance page shows, in one answer."""
        instance_id = request.match_info["instance_id"]
        record = await self.engine.get_status(instance_id)
        if record is None or record.is_entity:
            raise EngineError(404, f"No instance with ID '{instance_id}' found.")
        history = await self.engine.get_history(instance_id)
        waiting = await self.engine.waiting_on(instance_id)
        waiting_json = waiting.to_dict() if waiting is not None else None
        if waiting_json is not None:
            _retry_timers(waiting_json, history)
            waiting_json["worker"] = self.engine.runner.waiting_for(instance_id)
        now = format_time(self.engine.clock.now())
        timeline = _timeline(history, now, waiting_json["events"] if waiting_json else None)
        return _json(
            {
                "now": now,
                "status": status_json(record),
                "parentInstanceId": _parent_id(record),
                "failure": _failure(record, history),
                "waitingOn": waiting_json,
                "history": _history_rows(history),
                "steps": steps(history),
                "timeline": timeline,
                "generations": [
                    {"executionId": _execution_id(h), "timeline": _timeline(h, now, continued=True)}
                    for h in self.engine.generations(instance_id)
                ],
                "children": [
                    {"instanceId": b["instanceId"], "name": b["name"]}
                    for b in timeline["bars"]
                    if b["kind"] == "suborchestration"
                ],
            }
        )

    async def entities(self, request: web.Request) -> web.Response:
        """Entities with their state and the operations waiting for them."""
        records, token = await self.engine.query(
            InstanceQuery(instance_id_prefix="@"),
            _top(request),
            request.query.get("continuationToken"),
        )
        items = []
        for record in records:
            name, key = entity_id_parts(record.instance_id)
            queue = await self.engine.entity_queue(name, key)
            items.append(
                {
                    "instanceId": record.instance_id,
                    "name": name,
                    "key": key,
                    "state": _loads(record.entity_state),
                    "lastOperationTime": api_time(record.last_updated_time),
                    "queue": [
                        {"operation": r.operation, "signal": r.signal, "input": _loads(r.input)}
                        for r in queue
                    ],
                }
            )
        return _json({"entities": items, "continuationToken": token})
