"""SidecarHarness: devhost's Durable Task sidecar for a test, for `durabletask` clients and workers.

    with SidecarHarness() as sidecar:                 # memory store, virtual clock
        worker = TaskHubGrpcWorker(host_address=sidecar.address)
        ...
        sidecar.advance(hours=72)                     # a 72-hour durable timer fires now

The sidecar runs on an event loop in a background thread of its own; the SDK's client and
worker (threads of the test process) reach it over a local socket, as they reach any backend.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from ..grpc.sidecar import Sidecar
from ..store.base import TaskHubStore
from ..store.memory import MemoryStore
from .virtual_clock import VirtualClock, advance_through, step_of

T = TypeVar("T")


class SidecarHarness:
    """A started sidecar with its hubs' engines on one loop.

    Args:
        make_store: the store of a hub, from its name (default: a new memory store per hub).
        virtual_clock: time moves only through `advance` (default); False uses the real clock.
        port: the port to listen on (default: a free one; `address` tells which).
    """

    def __init__(
        self,
        make_store: Callable[[str], TaskHubStore] | None = None,
        virtual_clock: bool = True,
        port: int = 0,
    ) -> None:
        self.clock = VirtualClock() if virtual_clock else None
        self.sidecar = Sidecar(make_store or (lambda _hub: MemoryStore()), self.clock, port=port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="devhost-sidecar", daemon=True
        )

    @property
    def address(self) -> str:
        """`host:port`, the `host_address` of a durabletask client or worker."""
        return self.sidecar.address

    def __enter__(self) -> SidecarHarness:
        self._thread.start()
        try:
            self.run(self.sidecar.start())
        except BaseException:
            self._end_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.sidecar.stop())
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the sidecar's loop (an engine call, say) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def idle(self, timeout: float = 30) -> None:
        """Until no episode or activity of any hub is out with a worker or under way.

        Args:
            timeout: seconds to wait (a worker must be connected for work to finish).
        """
        self.run(self._settle(), timeout)

    async def _settle(self) -> None:
        while True:
            for hub in self.sidecar.hubs.hubs:
                await hub.engine.wait_idle()
            if self.clock is None or not self.clock.move_to(self.clock.now()):
                return

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        timeout: float = 60,
    ) -> None:
        """Move the virtual clock forward, firing durable timers in order of their due times
        and letting the workers settle after each; no wall time passes.

        Args:
            delta: how far to move, as a timedelta; or give days, hours, minutes, seconds.
            timeout: wall-clock seconds the workers may take to settle.
        """
        if self.clock is None:
            raise RuntimeError("advance() needs the virtual clock (virtual_clock=True)")
        step = step_of(delta, days, hours, minutes, seconds)
        self.run(advance_through(self.clock, step, self._settle), timeout)
