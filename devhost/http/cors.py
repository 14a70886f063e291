"""CORS for the app's own routes (`Host.CORS`, `--cors`), as `func start` answers them.

Never for the host's own surfaces (the Durable Functions HTTP API, the dashboard): `skip` says
which requests those are, and guard.py refuses their preflights before this runs.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def cors_middleware(origins: list[str], credentials: bool, skip: Callable[[web.Request], bool]):
    """Answer preflights and add Access-Control headers for allowed origins."""
    allow_any = "*" in origins

    @web.middleware
    async def middleware(request: web.Request, handler):
        if skip(request):
            return await handler(request)
        origin = request.headers.get("Origin")
        allowed = origin is not None and (allow_any or origin in origins)
        if (
            request.method == "OPTIONS"
            and allowed
            and "Access-Control-Request-Method" in request.headers
        ):
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = request.headers[
                "Access-Control-Request-Method"
            ]
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested:
                response.headers["Access-Control-Allow-Headers"] = requested
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            try:
                response = await handler(request)
            except web.HTTPException as err:
                response = err
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = (
                "*" if allow_any and not credentials else origin
            )
            response.headers["Vary"] = "Origin"
            if credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
        if isinstance(response, web.HTTPException) and response.status >= 400:
            raise response
        return response

    return middleware
