"""An HTTP function's invocation as plain fields: what crosses to a worker process and back.

The routing of requests to functions lives in `devhost.http.http_functions`; this module calls one
function with one request, in the host's process or in a worker's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import azure.functions as func

from .app_index import FunctionInfo
from .invoke import Invoker
from .status_links import encode_status_links

log = logging.getLogger("devhost.http")
JSON = "application/json; charset=utf-8"


@dataclass
class HttpCall:
    """An HTTP request as plain fields, which cross to a worker process as they are."""

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    route_params: dict[str, str]
    body: bytes


@dataclass
class HttpAnswer:
    """An HTTP function's response as plain fields."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


FAILED = HttpAnswer(
    500, {"Content-Type": JSON}, b'{"error": "The function failed; see the host\'s log."}'
)


async def call_http(invoker: Invoker, info: FunctionInfo, call: HttpCall) -> HttpAnswer:
    """Build the function's `func.HttpRequest`, call it with its bindings, answer plain fields."""
    http_request = func.HttpRequest(
        method=call.method,
        url=call.url,
        headers=call.headers,
        params=call.params,
        route_params=call.route_params,
        body=call.body,
    )
    try:
        data = {**http_request.params, **call.route_params, "query": dict(http_request.params)}
        result = await invoker.call(info, http_request, data)
    except Exception:
        log.exception("Function '%s' failed", info.name)
        return FAILED
    return http_answer(result)


def http_answer(result: object) -> HttpAnswer:
    """What the host answers for a function's return value."""
    if result is None:
        return HttpAnswer(204)
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        if not any(k.lower() == "content-type" for k in headers):
            content_type = result.mimetype or "text/plain"
            if result.charset:
                content_type += f"; charset={result.charset}"
            headers["Content-Type"] = content_type
        body = result.get_body()
        encoded = encode_status_links(headers, body)
        if encoded is not None:
            headers, body = encoded
        return HttpAnswer(result.status_code, headers, body)
    if isinstance(result, str):
        return HttpAnswer(200, {"Content-Type": "text/plain; charset=utf-8"}, result.encode())
    if isinstance(result, bytes):
        return HttpAnswer(200, {}, result)
    log.error("HTTP function returned %s; expected func.HttpResponse", type(result).__name__)
    return HttpAnswer(
        500, {"Content-Type": JSON}, b'{"error": "The function returned no HTTP response."}'
    )
