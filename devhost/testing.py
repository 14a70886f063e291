"""A test harness: an app on the memory store and a virtual clock, in-process, on a real socket.

    with DurableHarness("path/to/app") as host:
        client = host.client                      # the SDK's own DurableOrchestrationClient
        instance_id = host.run(client.start_new("Hello", None, "Tokyo"))
        host.advance(minutes=2)                   # durable timers fire; no wall time passes
        status = host.wait_for(instance_id)

The host runs on one event loop in a background thread shared by every harness of the process,
so the SDK's own HTTP session (a module global bound to a loop) stays valid across tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.request
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import azure.durable_functions as df

from .clock import Clock, VirtualClock
from .engine.model import RuntimeStatus
from .host import DevHost, ListenAddress
from .settings import load_settings
from .store.base import TaskHubStore
from .store.memory import MemoryStore

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="devhost-loop", daemon=True).start()
        return _loop


class DurableHarness:
    """Starts an app for a test; use as a context manager."""

    def __init__(
        self,
        app_dir: str | Path,
        store: TaskHubStore | None = None,
        virtual_clock: bool = True,
        env: dict[str, str] | None = None,
        cors_origins: list[str] | None = None,
        static_dir: str | Path | None = None,
    ) -> None:
        self.app_dir = Path(app_dir)
        self._store = store
        self._virtual = virtual_clock
        self._env = env or {}
        self._cors = cors_origins
        self._static_dir = Path(static_dir) if static_dir else None
        self.host: DevHost | None = None

    def __enter__(self) -> DurableHarness:
        os.environ.update(self._env)
        settings = load_settings(self.app_dir)
        if self._cors is not None:
            settings.cors_origins = self._cors
        self.clock = VirtualClock() if self._virtual else Clock()
        self.host = DevHost(
            settings,
            self._store or MemoryStore(),
            self.clock,
            listen=ListenAddress("127.0.0.1", 0),
            static_dir=self._static_dir,
        )
        self.run(self.host.start())
        self.client = df.DurableOrchestrationClient(self.host.client_json())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.host is not None:
            self.run(self.host.stop())

    @property
    def base_url(self) -> str:
        assert self.host
        return self.host.base_url

    @property
    def engine(self):
        assert self.host
        return self.host.engine

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the host's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, _shared_loop()).result(timeout)

    def idle(self, timeout: float = 30) -> None:
        """Wait until no episode, activity or delivery is under way."""
        self.run(self.engine.wait_idle(), timeout)

    def advance(self, timeout: float = 60, **delta: float) -> None:
        """Advance the virtual clock (seconds=, minutes=, hours=), firing timers on the way."""
        assert self.host
        schedules = [self.host.triggers.timers]
        self.run(self.engine.advance(timedelta(**delta), schedules), timeout)

    def status(self, instance_id: str, **options: bool) -> df.DurableOrchestrationStatus:
        return self.run(self.client.get_status(instance_id, **options))

    def wait_for(
        self, instance_id: str, timeout: float = 30, statuses: tuple[str, ...] = ()
    ) -> df.DurableOrchestrationStatus:
        """Wait until the instance reaches one of `statuses` (default: any finished status).

        On the virtual clock nothing changes once the engine is idle, so an instance that is idle
        in another status fails at once, with its status, rather than at the deadline.
        """
        wanted = {RuntimeStatus(s) for s in statuses} or {s for s in RuntimeStatus if s.is_terminal}
        if self._virtual:
            self.idle(timeout)
        record = self.run(self.engine.wait_for_status(instance_id, wanted, timeout), timeout + 5)
        if record is None or record.runtime_status not in wanted:
            current = record.runtime_status.value if record else "unknown"
            raise AssertionError(f"{instance_id} is {current}, not one of {sorted(wanted)}")
        return self.status(instance_id)

    def http(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """A real HTTP request to the host: status, headers and the JSON (or text) body."""
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), _decode(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), _decode(err.read())


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
