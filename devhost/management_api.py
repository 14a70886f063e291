"""The Durable Functions HTTP API under /runtime/webhooks/durabletask/, used by the SDK's client."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .client_binding import WEBHOOK_PATH, management_urls
from .engine.engine import Engine, EngineError
from .engine.model import InstanceQuery, RuntimeStatus
from .status import api_time, status_json

CONTINUATION_HEADER = "x-ms-continuation-token"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _error(status: int, message: str) -> web.Response:
    return _json({"Message": message, "ExceptionMessage": message}, status)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() == "true"


def _top(request: web.Request) -> int | None:
    """The page size asked for with ?top=, if it is a positive number."""
    text = request.query.get("top", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"Message": f"{name} is not an ISO-8601 time: {value!r}"}),
            content_type="application/json",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


async def payload_json(request: web.Request) -> str | None:
    """The request body as JSON text for the orchestration.

    The SDK serializes values itself and then posts the resulting text as JSON again, so a body
    that is a JSON string holding JSON is unwrapped once.
    """
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"Message": "Only application/json request content is supported"}),
            content_type="application/json",
        ) from None
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            pass
    return json.dumps(value)


class ManagementApi:
    def __init__(self, engine: Engine, hub: str) -> None:
        self.engine = engine
        self.hub = hub

    def routes(self) -> list[web.RouteDef]:
        base = WEBHOOK_PATH
        return [
            web.post(f"{base}/orchestrators/{{name}}", self.start),
            web.post(f"{base}/orchestrators/{{name}}/{{instance_id}}", self.start),
            web.get(f"{base}/instances", self.list_instances),
            web.get(f"{base}/instances/", self.list_instances),
            web.delete(f"{base}/instances", self.purge_by),
            web.delete(f"{base}/instances/", self.purge_by),
            web.get(f"{base}/instances/{{instance_id}}", self.get_status),
            web.delete(f"{base}/instances/{{instance_id}}", self.purge_one),
            web.post(f"{base}/instances/{{instance_id}}/raiseEvent/{{event}}", self.raise_event),
            web.post(f"{base}/instances/{{instance_id}}/terminate", self.terminate),
            web.post(f"{base}/instances/{{instance_id}}/suspend", self.suspend),
            web.post(f"{base}/instances/{{instance_id}}/resume", self.resume),
            web.post(f"{base}/instances/{{instance_id}}/rewind", self.rewind),
            web.post(f"{base}/instances/{{instance_id}}/restart", self.restart),
            web.get(f"{base}/entities", self.list_entities),
            web.get(f"{base}/entities/", self.list_entities),
            web.get(f"{base}/entities/{{name}}", self.list_entities),
            web.get(f"{base}/entities/{{name}}/{{key}}", self.get_entity),
            web.post(f"{base}/entities/{{name}}/{{key}}", self.signal_entity),
        ]

    def _origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            input_json = await payload_json(request)
            instance_id = await self.engine.start_new(
                name, request.match_info.get("instance_id"), input_json
            )
        except EngineError as err:
            return _error(err.status, str(err))
        urls = management_urls(self._origin(request), self.hub, instance_id)
        return _json(urls, 202, {"Location": urls["statusQueryGetUri"], "Retry-After": "10"})

    async def get_status(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        record = await self.engine.get_record(instance_id)
        if record is None:
            return _json({"Message": f"No instance with ID '{instance_id}' found."}, 404)
        history = None
        if _flag(request, "showHistory"):
            history = await self.engine.get_history(instance_id)
        body = status_json(
            record, _flag(request, "showInput", True), history, _flag(request, "showHistoryOutput")
        )
        status = record.runtime_status
        if status in (RuntimeStatus.Failed,) and _flag(
            request, "returnInternalServerErrorOnFailure"
        ):
            return _json(body, 500)
        if status.is_terminal:
            return _json(body, 200)
        urls = management_urls(self._origin(request), self.hub, instance_id)
        return _json(body, 202, {"Location": urls["statusQueryGetUri"], "Retry-After": "10"})

    def _query(self, request: web.Request) -> InstanceQuery:
        statuses = request.query.get("runtimeStatus")
        try:
            runtime_status = (
                {RuntimeStatus(s.strip()) for s in statuses.split(",") if s.strip()}
                if statuses
                else None
            )
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"Message": f"Unknown runtimeStatus in {statuses!r}"}),
                content_type="application/json",
            ) from None
        return InstanceQuery(
            runtime_status=runtime_status,
            created_from=_time(request.query.get("createdTimeFrom"), "createdTimeFrom"),
            created_to=_time(request.query.get("createdTimeTo"), "createdTimeTo"),
            instance_id_prefix=request.query.get("instanceIdPrefix") or None,
        )

    async def list_instances(self, request: web.Request) -> web.Response:
        query = self._query(request)
        top = _top(request)
        token = request.headers.get(CONTINUATION_HEADER)
        records, next_token = await self.engine.query(query, top, token)
        show_input = _flag(request, "showInput")
        headers = {CONTINUATION_HEADER: next_token} if next_token else None
        orchestrations = [r for r in records if not r.is_entity]
        return _json([status_json(r, show_input) for r in orchestrations], 200, headers)

    async def get_entity(self, request: web.Request) -> web.Response:
        name, key = request.match_info["name"], request.match_info["key"]
        record = await self.engine.read_entity(name, key)
        if record is None:
            return _json({"Message": f"Entity @{name}@{key} has no state."}, 404)
        return _json(json.loads(record.entity_state or "null"))

    async def signal_entity(self, request: web.Request) -> web.Response:
        name, key = request.match_info["name"], request.match_info["key"]
        try:
            input_json = await payload_json(request)
            await self.engine.signal_entity(name, key, request.query.get("op", ""), input_json)
        except EngineError as err:
            return _error(err.status, str(err))
        return web.Response(status=202)

    async def list_entities(self, request: web.Request) -> web.Response:
        """Entities with state, of one name or all: the docs' entity query."""
        name = request.match_info.get("name")
        prefix = f"@{name.lower()}@" if name else "@"
        top = _top(request)
        records, next_token = await self.engine.query(
            InstanceQuery(instance_id_prefix=prefix), top, request.headers.get(CONTINUATION_HEADER)
        )
        fetch_state = _flag(request, "fetchState")
        body = []
        for record in records:
            if record.entity_state is None:
                continue
            entity_name, _, key = record.instance_id[1:].partition("@")
            item: dict[str, Any] = {
                "entityId": {"name": entity_name, "key": key},
                "lastOperationTime": api_time(record.last_updated_time),
            }
            if fetch_state:
                item["state"] = json.loads(record.entity_state)
            body.append(item)
        headers = {CONTINUATION_HEADER: next_token} if next_token else None
        return _json(body, 200, headers)

    async def purge_one(self, request: web.Request) -> web.Response:
        deleted = await self.engine.purge([request.match_info["instance_id"]])
        if not deleted:
            return _json({"instancesDeleted": 0}, 404)
        return _json({"instancesDeleted": deleted})

    async def purge_by(self, request: web.Request) -> web.Response:
        query = self._query(request)
        if query.created_from is None:
            return _error(400, "createdTimeFrom is required to purge instances.")
        ids, token = [], None
        while True:
            records, token = await self.engine.query(query, 1000, token)
            ids.extend(r.instance_id for r in records)
            if not token:
                break
        deleted = await self.engine.purge(ids)
        if not deleted:
            return _json({"instancesDeleted": 0}, 404)
        return _json({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        return await self._control(
            request,
            lambda iid, data: self.engine.raise_event(iid, request.match_info["event"], data),
            read_body=True,
        )

    async def terminate(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason", "")
        return await self._control(request, lambda iid, _: self.engine.terminate(iid, reason))

    async def suspend(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason", "")
        return await self._control(request, lambda iid, _: self.engine.suspend(iid, reason))

    async def resume(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason", "")
        return await self._control(request, lambda iid, _: self.engine.resume(iid, reason))

    async def rewind(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason", "")
        return await self._control(request, lambda iid, _: self.engine.rewind(iid, reason))

    async def restart(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        with_new_id = _flag(request, "restartWithNewInstanceId", True)
        try:
            new_id = await self.engine.restart(instance_id, with_new_id)
        except EngineError as err:
            return _error(err.status, str(err))
        return _json(new_id, 202)

    async def _control(self, request: web.Request, action, read_body: bool = False) -> web.Response:
        instance_id = request.match_info["instance_id"]
        try:
            data = await payload_json(request) if read_body else None
            await action(instance_id, data)
        except EngineError as err:
            return _error(err.status, str(err))
        return web.Response(status=202)
