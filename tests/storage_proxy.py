"""A counting proxy in front of Azurite's table endpoint, for tests of round trips.

Every request of a client given `proxy.connection_string` passes through here to the real
Azurite (signatures still hold: SharedKey does not sign the host). The proxy records what it
forwarded, and how many requests were in flight at once. With `meet=n`, a request waits (up to
MEET_SECONDS) until n are in flight before it is forwarded, so requests sent concurrently are
seen concurrently, and requests sent one after another are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from devhost.azurite import Azurite, connection_string

MEET_SECONDS = 2.0
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
BATCH_TABLE = re.compile(rb"(?:POST|PUT|DELETE) \S+/([A-Za-z0-9]+)(?:\(| HTTP)")


@dataclass
class Forwarded:
    """One request the proxy passed on: its method, path, and the table a transaction wrote."""

    method: str
    path: str
    batch_table: str | None


class StorageProxy:
    """Runs in a thread of its own, so that sync and async tests can use it alike."""

    def __init__(self, azurite: Azurite) -> None:
        self.azurite = azurite
        self.requests: list[Forwarded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.meet = 1
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._arrived: asyncio.Condition | None = None
        self.port = 0

    @property
    def connection_string(self) -> str:
        blob, queue, _ = self.azurite.ports
        return connection_string(self.azurite.host, (blob, queue, self.port))

    def __enter__(self) -> StorageProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self, meet: int = 1) -> None:
        """Forget what was counted; from now on requests wait for `meet` in flight."""
        self.requests = []
        self.max_in_flight = self.in_flight
        self.meet = meet

    def transactions(self, table: str) -> int:
        return sum(1 for r in self.requests if r.batch_table == table)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._arrived = asyncio.Condition()
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp's way

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None and self._arrived is not None
        body = await request.read()
        table = BATCH_TABLE.search(body) if request.path.endswith("$batch") else None
        self.requests.append(
            Forwarded(request.method, request.path, table.group(1).decode() if table else None)
        )
        async with self._arrived:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._arrived.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: self.in_flight >= self.meet), MEET_SECONDS
                )
        try:
            target = f"http://{self.azurite.host}:{self.azurite.ports[2]}{request.raw_path}"
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            async with self._session.request(
                request.method, target, headers=headers, data=body or None
            ) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(status=answer.status, headers=kept, body=payload)
        finally:
            self.in_flight -= 1
