"""HTTP-triggered functions: route templates, request mapping and response mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ..app.app_index import FunctionInfo
from ..app.http_call import HttpCall

if TYPE_CHECKING:
    from ..runner import FunctionRunner


# Route constraints of the Functions host (ASP.NET routing) that a regular expression can check.
CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"[^/]+",
}
PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?(\?)?(?:=[^}]*)?\}")


@dataclass
class Route:
    """One HTTP function's route, compiled to a case-insensitive regular expression."""

    function: FunctionInfo
    template: str
    pattern: re.Pattern[str]
    methods: set[str] | None

    @classmethod
    def compile(cls, function: FunctionInfo, prefix: str) -> Route:
        template = "/".join(p for p in (prefix, function.route.strip("/")) if p)
        parts = ["^"]
        for segment in template.split("/"):
            body = ""
            position = 0
            optional = False
            for match in PARAMETER.finditer(segment):
                body += re.escape(segment[position : match.start()])
                catch_all, name, constraint, question = match.groups()
                value = (
                    r".*" if catch_all else CONSTRAINTS.get((constraint or "").lower(), r"[^/]+")
                )
                body += f"(?P<{name}>{value})"
                optional = optional or bool(question) or bool(catch_all)
                position = match.end()
            body += re.escape(segment[position:])
            parts.append(f"(?:/{body})?" if optional else f"/{body}")
        pattern = re.compile("".join(parts) + "/?$", re.IGNORECASE)
        methods = set(function.methods) if function.methods else None
        return cls(function, "/" + template, pattern, methods)


class HttpFunctions:
    """Dispatches requests under the route prefix to the app's HTTP functions."""

    def __init__(
        self, functions: dict[str, FunctionInfo], prefix: str, runner: FunctionRunner
    ) -> None:
        self.routes = [Route.compile(f, prefix) for f in functions.values()]
        # Literal routes before parameterised ones, as the real host's routing prefers them.
        self.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        self.runner = runner

    def match(self, path: str, method: str) -> tuple[Route, dict[str, str]] | frozenset[str] | None:
        """The route and its parameters; the methods allowed when only the method is wrong."""
        allowed: set[str] = set()
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.methods and method not in route.methods:
                allowed |= route.methods
                continue
            params = {k: v for k, v in found.groupdict().items() if v is not None}
            return route, params
        return frozenset(allowed) if allowed else None

    async def handle(
        self, request: web.Request, found: tuple[Route, dict[str, str]]
    ) -> web.StreamResponse:
        """Call the function match() found for this request, wherever functions run."""
        route, params = found
        call = HttpCall(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query),
            route_params=params,
            body=await request.read(),
        )
        answer = await self.runner.http(route.function.name, call)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
