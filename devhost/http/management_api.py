"""The Durable Functions HTTP API under /runtime/webhooks/durabletask/, used by the SDK's client.

It is a sub-application with one error path: every refusal (bad input, an unknown route, a
wrong method, storage that refused or stayed away past the request's deadline) is answered as
JSON `{"Message", "ExceptionMessage"}` by `errors_middleware`, never as a 500. Bodies follow the
extension's content rules: an event must be `application/json`, a start's body is read as JSON
whatever its type, an entity operation's non-JSON body is a string. Who may call it at all is
decided before it, by the host's guard (devhost/http/guard.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..app.client_binding import management_urls
from ..engine.engine import Engine
from ..engine.purge_filter import matching
from ..status import api_time, status_json
from ..store.base import StorageRequestError, StorageUnavailableError, storage_deadline
from ..taskhub.errors import EngineError
from ..taskhub.model import InstanceQuery, InstanceRecord, RuntimeStatus
from ..taskhub.rules import MAX_PAYLOAD_CHARS, not_purged_reason, payload_too_large

log = logging.getLogger("devhost.api")
CONTINUATION_HEADER = "x-ms-continuation-token"
RETRY_AFTER_SECONDS = 5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"Message": message, "ExceptionMessage": message}, status, headers)


def errors_middleware(deadline: float) -> Callable:
    """Run each request within the storage deadline and answer every refusal as JSON."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            with storage_deadline(deadline):
                return await handler(request)
        except (EngineError, StorageRequestError) as err:
            response = _error(err.status, str(err))
            if err.status == 413:
                response.force_close()  # the unread body is not worth reading to keep it open
            return response
        except StorageUnavailableError as err:
            return _error(
                503,
                f"{err}; nothing was done. Try again in a few seconds.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        except web.HTTPException as err:
            if err.status < 400:
                raise
            headers = {k: v for k, v in err.headers.items() if k.lower() != "content-type"}
            return _error(err.status, _sentence(err, request), headers)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return _error(500, "devhost failed on this request; the host's log says why.")

    return middleware


def _sentence(err: web.HTTPException, request: web.Request) -> str:
    if err.status == 404:
        return f"No Durable Functions HTTP API route matches {request.path}."
    if err.status == 405:
        return f"{request.method} is not allowed here; use {err.headers.get('Allow', 'another')}."
    return err.text or err.reason


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() == "true"


MAX_PAGE = 1000  # what one Table storage query returns at most


def _top(request: web.Request) -> int | None:
    """The page size asked for with ?top=, if it is a positive number (at most MAX_PAGE)."""
    text = request.query.get("top", "")
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        return None
    return min(int(text), MAX_PAGE)


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 query parameter (UTC when it names no zone), or a 400 naming it."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EngineError(400, f"{name} is not an ISO-8601 time: {value[:100]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


JSON_ONLY = "Only application/json request content is supported"  # the extension's sentence


def is_json(request: web.Request) -> bool:
    """Whether the body is declared `application/json` (any parameters, any case)."""
    return request.content_type.lower() == "application/json"


async def payload_json(request: web.Request) -> str | None:
    """The request body as JSON text for the orchestration, whatever its content type (the
    extension reads a start's body so: `curl -d` sends a form type).

    The SDK serializes values itself and then posts the resulting text as JSON again, so a body
    that is a JSON string holding JSON is unwrapped once.
    """
    raw = await _body(request)
    if not raw.strip():
        return None
    value = _parse_json(raw, "Invalid JSON content")
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except (ValueError, RecursionError):
            pass
    return json.dumps(value)


async def _body(request: web.Request) -> bytes:
    """The body, or a 413 past the payload limit."""
    if (request.content_length or 0) > MAX_PAYLOAD_CHARS:
        raise EngineError(413, payload_too_large("request body", request.content_length or 0))
    raw = await request.read()
    if len(raw) > MAX_PAYLOAD_CHARS:
        raise EngineError(413, payload_too_large("request body", len(raw)))
    return raw


async def event_json(request: web.Request) -> str | None:
    """An event's data: the extension takes `application/json` only, and so does this host."""
    if not is_json(request):
        raise EngineError(400, JSON_ONLY)
    return await payload_json(request)


async def operation_json(request: web.Request) -> str | None:
    """An entity operation's input: JSON when declared `application/json`, else the body's
    text as a string, as the extension reads it."""
    if is_json(request):
        return await payload_json(request)
    raw = await _body(request)
    if not raw:
        return None
    return json.dumps(raw.decode("utf-8", "replace"))


def _parse_json(raw: bytes | str, refusal: str) -> Any:
    """JSON, or a 400; nesting too deep for the parser is invalid content too."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise EngineError(400, f"{refusal}: the body is not valid JSON.") from None


def _not_purged(live: list[InstanceRecord]) -> web.Response:
    """The runtime's answer to a purge that deleted nothing (404), saying why when the
    instances asked for are still live."""
    body: dict[str, Any] = {"instancesDeleted": 0}
    reason = not_purged_reason([(r.instance_id, str(r.runtime_status)) for r in live])
    if reason:
        body["Message"] = reason
    return _json(body, 404)


class ManagementApi:
    def __init__(self, engine: Engine, hub: str, deadline: float) -> None:
        self.engine = engine
        self.hub = hub
        self.deadline = deadline

    def app(self) -> web.Application:
        """The API as a sub-application, to be mounted at WEBHOOK_PATH."""
        app = web.Application(middlewares=[errors_middleware(self.deadline)])
        app.add_routes(self.routes())
        return app

    def routes(self) -> list[web.RouteDef]:
        # Ids match any character, `/` included, so that a bad id reaches the engine's check and
        # is refused with the runtime's sentence rather than missing every route.
        instance = "/instances/{instance_id:[\\s\\S]+}"
        return [
            web.post("/orchestrators/{name}", self.start),
            web.post("/orchestrators/{name}/{instance_id:[\\s\\S]+}", self.start),
            web.get("/instances", self.list_instances),
            web.get("/instances/", self.list_instances),
            web.delete("/instances", self.purge_by),
            web.delete("/instances/", self.purge_by),
            web.post(f"{instance}/raiseEvent/{{event:[\\s\\S]+}}", self.raise_event),
            web.post(f"{instance}/terminate", self.terminate),
            web.post(f"{instance}/suspend", self.suspend),
            web.post(f"{instance}/resume", self.resume),
            web.post(f"{instance}/rewind", self.rewind),
            web.post(f"{instance}/restart", self.restart),
            web.get(instance, self.get_status),
            web.delete(instance, self.purge_one),
            web.get("/entities", self.list_entities),
            web.get("/entities/", self.list_entities),
            web.get("/entities/{name}", self.list_entities),
            web.get("/entities/{name}/{key:[\\s\\S]+}", self.get_entity),
            web.post("/entities/{name}/{key:[\\s\\S]+}", self.signal_entity),
        ]

    def _origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        input_json = await payload_json(request)
        instance_id = await self.engine.start_new(
            name, request.match_info.get("instance_id"), input_json
        )
        urls = management_urls(self._origin(request), self.hub, instance_id)
        return _json(urls, 202, {"Location": urls["statusQueryGetUri"], "Retry-After": "10"})

    async def get_status(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        record = await self.engine.get_status(instance_id)
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
            raise EngineError(400, f"Unknown runtimeStatus in {statuses[:200]!r}") from None
        return InstanceQuery(
            runtime_status=runtime_status,
            created_from=parse_time(request.query.get("createdTimeFrom"), "createdTimeFrom"),
            created_to=parse_time(request.query.get("createdTimeTo"), "createdTimeTo"),
            instance_id_prefix=request.query.get("instanceIdPrefix") or None,
            orchestrations_only=True,  # entities have routes of their own, and are not purged
        )

    async def list_instances(self, request: web.Request) -> web.Response:
        query = self._query(request)
        top = _top(request)
        token = request.headers.get(CONTINUATION_HEADER)
        records, next_token = await self.engine.query(query, top, token)
        show_input = _flag(request, "showInput")
        headers = {CONTINUATION_HEADER: next_token} if next_token else None
        return _json([status_json(r, show_input) for r in records], 200, headers)

    async def get_entity(self, request: web.Request) -> web.Response:
        name, key = request.match_info["name"], request.match_info["key"]
        record = await self.engine.read_entity(name, key)
        if record is None:
            return _json({"Message": f"Entity @{name}@{key} has no state."}, 404)
        return _json(json.loads(record.entity_state or "null"))

    async def signal_entity(self, request: web.Request) -> web.Response:
        name, key = request.match_info["name"], request.match_info["key"]
        input_json = await operation_json(request)
        await self.engine.signal_entity(name, key, request.query.get("op", ""), input_json)
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
        instance_id = request.match_info["instance_id"]
        deleted = await self.engine.purge([instance_id])
        if deleted:
            return _json({"instancesDeleted": deleted})
        record = await self.engine.get_status(instance_id)
        live = [record] if record is not None and not record.runtime_status.is_terminal else []
        return _not_purged(live)

    async def purge_by(self, request: web.Request) -> web.Response:
        query = self._query(request)
        if query.created_from is None:
            return _error(400, "createdTimeFrom is required to purge instances.")
        found = await matching(self.engine.query, query)
        deleted = await self.engine.purge(found.ids)
        if deleted:
            return _json({"instancesDeleted": deleted})
        return _not_purged(found.live)

    async def raise_event(self, request: web.Request) -> web.Response:
        return await self._control(
            request,
            lambda iid, data: self.engine.raise_event(iid, request.match_info["event"], data),
            body=event_json,
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
        new_id = await self.engine.restart(instance_id, with_new_id)
        return _json(new_id, 202)

    async def _control(
        self,
        request: web.Request,
        action,
        body: Callable[[web.Request], Awaitable[str | None]] | None = None,
    ) -> web.Response:
        instance_id = request.match_info["instance_id"]
        data = await body(request) if body else None
        await action(instance_id, data)
        return web.Response(status=202)
