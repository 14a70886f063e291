"""Durable HTTP: `context.call_http(...)` carried out by the host, as the Durable extension does.

The SDK schedules the built-in activity `BuiltIn::HttpActivity` with the request as its input
(`{method, uri, content, headers, tokenSource}`); the engine's dispatch hands that task here
rather than to a function of the app. Its result is the extension's DurableHttpResponse,
`{"statusCode", "headers", "content"}`: any status is a result (a 404 too), and only a request
that cannot be made (refused, unknown host, no answer in time, a managed identity asked for)
fails the task. It is scheduled, stored and run again after a restart exactly as an activity is,
so a request in flight when the host dies is sent again (at least once).

The asynchronous pattern (a 202 with a Location header polled until it answers otherwise, after
its Retry-After) is what the extension does when the request says `asynchronousPatternEnabled`.
The Python SDK 1.x never says it, so on Azure its orchestrators get the 202 itself; devhost gives
it to them too, and polls for requests that ask. A wait between polls is on the engine's clock
(the virtual clock skips it), and a task waiting there does not keep the engine busy: it is
released (`on_wait`) while it waits and held again (`on_wake`) when it polls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from ..app.invoke import ActivityOutcome
from ..clock import Clock

REQUEST_SECONDS = 100.0  # HttpClient's timeout, which the extension's requests keep
POLL_SECONDS = 30.0  # the extension's defaultAsyncRequestSleepTimeMilliseconds
# .NET keeps these on the content, not in the response's headers the extension copies.
CONTENT_HEADERS = frozenset(
    {
        "allow",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "expires",
        "last-modified",
    }
)
ActivityDone = Callable[[ActivityOutcome], None]


class DurableHttpError(Exception):
    """The request could not be made; the message is the task's failure reason."""


@dataclass
class HttpRequest:
    """A durable HTTP request as the SDK serialises it, checked."""

    method: str
    uri: URL
    content: str | None
    headers: CIMultiDict[str]
    poll: bool  # asynchronousPatternEnabled

    @classmethod
    def from_input(cls, input_json: str | None) -> HttpRequest:
        try:
            data = json.loads(input_json or "null")
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise DurableHttpError("The durable HTTP request is not a JSON object")
        method, uri, content = data.get("method"), data.get("uri"), data.get("content")
        if not isinstance(method, str) or not method.strip():
            raise DurableHttpError(f"The durable HTTP request has no method: {method!r}")
        url = _absolute_url(uri, "uri")
        token = data.get("tokenSource")
        if token:
            resource = token.get("resource") if isinstance(token, dict) else token
            raise DurableHttpError(
                f"The durable HTTP request to {url} asks for a managed identity token for "
                f"'{resource}' (token_source), and no managed identity endpoint exists locally: "
                "devhost cannot get that token. Locally, put a token of your own in the "
                "request's headers."
            )
        if content is not None and not isinstance(content, str):
            raise DurableHttpError("The durable HTTP request's content must be a string")
        return cls(
            method.strip().upper(),
            url,
            content,
            _headers(data.get("headers")),
            data.get("asynchronousPatternEnabled") is True,
        )

    def location_poll(self, location: str) -> HttpRequest:
        """The GET that polls a 202's Location, as the extension builds it (no function key)."""
        headers = self.headers.copy()
        headers.popall("x-functions-key", None)
        return HttpRequest(
            "GET", _absolute_url(location, "202 answer's Location"), None, headers, True
        )


def _absolute_url(value: Any, what: str) -> URL:
    url = URL(value) if isinstance(value, str) else None
    if url is None or not url.is_absolute() or url.scheme not in ("http", "https"):
        raise DurableHttpError(
            f"The durable HTTP request's {what} is not an absolute http(s) URL: {value!r}"
        )
    return url


def _headers(value: Any) -> CIMultiDict[str]:
    """Headers as the extension reads them: each a string or a list of strings."""
    headers: CIMultiDict[str] = CIMultiDict()
    if value is None:
        return headers
    if not isinstance(value, dict):
        raise DurableHttpError("The durable HTTP request's headers must be an object")
    for name, values in value.items():
        for item in values if isinstance(values, list) else [values]:
            if not isinstance(item, str):
                raise DurableHttpError(f"The value of header '{name}' must be a string: {item!r}")
            headers.add(str(name), item)
    return headers


def response_shape(status: int, headers: CIMultiDict[str], body: str) -> dict[str, Any]:
    """The extension's DurableHttpResponse as JSON: content headers are not among `headers`, and
    a header sent more than once is a list."""
    shaped: dict[str, Any] = {}
    for name in headers:
        if name.lower() in CONTENT_HEADERS or name in shaped:
            continue
        values = headers.getall(name)
        shaped[name] = values[0] if len(values) == 1 else values
    return {"statusCode": status, "headers": shaped, "content": body}


class DurableHttp:
    """Makes the durable HTTP requests of the engine's instances.

    A request waiting on the clock to poll again is not running: `on_wait` says so when it
    starts waiting, and `on_wake` when it polls.
    """

    def __init__(
        self, clock: Clock, on_wait: Callable[[], None], on_wake: Callable[[], None]
    ) -> None:
        self.clock = clock
        self.on_wait = on_wait
        self.on_wake = on_wake
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    def start(self, input_json: str | None, done: ActivityDone) -> None:
        """Make the request; `done` gets its outcome, as an activity's."""
        task = asyncio.create_task(self._run(input_json, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Requests in flight are dropped; the next host sends them again."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, input_json: str | None, done: ActivityDone) -> None:
        try:
            response = await self._call(HttpRequest.from_input(input_json))
        except DurableHttpError as err:
            done(ActivityOutcome(ok=False, reason=str(err), details=str(err)))
            return
        done(ActivityOutcome(ok=True, result=json.dumps(response)))

    async def _call(self, request: HttpRequest) -> dict[str, Any]:
        while True:
            response = await self._send(request)
            location = (
                response["headers"].get("Location") if response["statusCode"] == 202 else None
            )
            if not request.poll or not isinstance(location, str):
                return response
            await self._sleep(_retry_after(response["headers"].get("Retry-After")))
            request = request.location_poll(location)

    async def _send(self, request: HttpRequest) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_SECONDS)
            )
        headers = request.headers.copy()
        if request.content is not None and "Content-Type" not in headers:
            headers["Content-Type"] = "text/plain; charset=utf-8"  # .NET StringContent's
        data = None if request.content is None else request.content.encode()
        try:
            async with self._session.request(
                request.method, request.uri, headers=headers, data=data
            ) as answer:
                body = await answer.read()
                text = body.decode(answer.charset or "utf-8", errors="replace")
                return response_shape(answer.status, CIMultiDict(answer.headers), text)
        except TimeoutError:
            reason = f"no answer within {REQUEST_SECONDS:g} seconds"
        except (aiohttp.ClientError, ValueError, OSError) as err:
            reason = f"{type(err).__name__}: {err}"
        raise DurableHttpError(
            f"The durable HTTP request {request.method} {request.uri} failed: {reason}"
        )

    async def _sleep(self, seconds: float) -> None:
        """Wait on the engine's clock, not running meanwhile."""
        woken = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                self.on_wake()  # at once: the clock's caller may wait for idle right after
                woken.set_result(None)

        booking = self.clock.call_at(self.clock.now() + timedelta(seconds=seconds), wake)
        self.on_wait()
        try:
            await woken
        except asyncio.CancelledError:
            booking.cancel()
            raise


def _retry_after(value: Any) -> float:
    """Seconds to wait before polling: Retry-After in whole seconds, as the extension reads it."""
    if value is None:
        return POLL_SECONDS
    text = value if isinstance(value, str) else ""
    if not text.strip().isdigit():
        raise DurableHttpError(
            f"The 202 answer's Retry-After must be a whole number of seconds, not {value!r}"
        )
    return float(text)
