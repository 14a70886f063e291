"""The host: one app, its engine and store, and the HTTP server in front of them."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from .app.app_index import FunctionIndex, FunctionInfo, index_app
from .app.bindings import BindingIO, unsupported
from .app.client_binding import WEBHOOK_PATH, client_binding_json
from .app.invoke import Invoker
from .app.orchestrator_check import check_orchestrators
from .app.queue_options import QueueOptions
from .app.storage_account import StorageAccounts
from .clock import Clock
from .dashboard.api import DASHBOARD_PATH, DashboardApi
from .engine.engine import Engine
from .engine.warm import WarmOrchestrations
from .function_timeout import FunctionThreads, call_within
from .grpc.beside_app import GrpcBesideApp
from .host_names import WILDCARDS, HostCheck, bracketed
from .http.cors import cors_middleware
from .http.guard import RequestGuard
from .http.http_functions import HttpFunctions
from .http.management_api import ManagementApi
from .runner import FunctionRunner, InProcessRunner
from .settings import HostSettings
from .store.azure import AzureStore
from .store.base import TaskHubStore
from .store.memory import MemoryStore
from .triggers.listeners import TriggerListeners
from .workers.pool import WorkerPool

log = logging.getLogger("devhost")
MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the Functions host's HTTP request limit
SHUTDOWN_SECONDS = 5  # how long a stop waits for requests still being answered


@dataclass
class ListenAddress:
    host: str
    port: int

    @property
    def origin(self) -> str:
        """The host's own URL, as the app's client and the printed links use it: an IPv6 address
        in brackets, and `localhost` for every interface (`0.0.0.0`, `::`), which is no address
        a client can be sent to on every system."""
        host = "localhost" if bracketed(self.host) in WILDCARDS else bracketed(self.host)
        return f"http://{host}:{self.port}"


def host_id(app_dir: Path) -> str:
    """Names this host's own records in the account (timer status, blob receipts), as the host's
    `AzureFunctionsWebHost__hostid` setting does; by default, the app folder's name."""
    configured = os.environ.get("AzureFunctionsWebHost__hostid")
    derived = re.sub(r"[^a-z0-9-]", "-", Path(app_dir).resolve().name.lower()).strip("-")
    return (configured or derived or "devhost")[:32]


@web.middleware
async def host_errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Errors the host itself answers (no such route, wrong method, body too large) as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        if err.status == 404:
            message = f"Nothing here answers {request.method} {request.path}."
        elif err.status == 405:
            allowed = err.headers.get("Allow", "")
            message = f"{request.method} is not allowed for {request.path}; use {allowed}."
        else:
            message = err.reason
        headers = {k: v for k, v in err.headers.items() if k.lower() != "content-type"}
        return web.json_response({"Message": message}, status=err.status, headers=headers)


class DevHost:
    """Runs an app: `await start()` serves it on a port, `await stop()` ends it cleanly."""

    def __init__(
        self,
        settings: HostSettings,
        store: TaskHubStore,
        clock: Clock,
        index: FunctionIndex | None = None,
        listen: ListenAddress | None = None,
        static_dir: Path | None = None,
        workers: int | None = None,
        grpc_port: int | None = None,
    ) -> None:
        """`workers`: language worker processes to run functions in; 0 runs them in this
        process; None takes FUNCTIONS_WORKER_PROCESS_COUNT from the settings, or 0 if unset.
        `grpc_port`: also serve Durable Task's gRPC protocol on this port (0 picks one), on the
        same engine and hub, for `durabletask` workers and clients; None serves no gRPC."""
        self.settings = settings
        self.index = index or index_app(settings.app_dir)
        self.listen = listen or ListenAddress("127.0.0.1", settings.port)
        self.executor = FunctionThreads(settings.max_concurrent_activities, "devhost-fn")
        self.accounts = accounts = StorageAccounts()
        self.io = BindingIO(
            accounts,
            queue_base64=QueueOptions.from_host_json(settings.host_json).base64,
            on_write=self._written,
        )
        self.invoker = Invoker(self.executor, str(settings.app_dir), self.client_json, self.io)
        self.triggers = TriggerListeners(
            self.index,
            clock,
            self._call_trigger,
            accounts,
            self.executor,
            settings.host_json,
            host_id=host_id(settings.app_dir),
        )
        self.clock = clock
        count = settings.worker_processes if workers is None else workers
        self.runner: FunctionRunner
        if count:
            self.runner = WorkerPool(self.index, settings, count, self.client_json, self._written)
        else:
            warm = WarmOrchestrations(settings.warm_instances, verify=settings.verify_warm)
            self.runner = InProcessRunner(
                self.index,
                self.invoker,
                settings.max_concurrent_activities,
                warm,
                settings.function_timeout,
                self.executor,
            )
        self.grpc: GrpcBesideApp | None = None
        engine_index, engine_runner = self.index, self.runner
        if grpc_port is not None:
            self.grpc = GrpcBesideApp(
                self.index, self.runner, settings.hub_name, self.listen.host, grpc_port
            )
            engine_index, engine_runner = self.grpc.index, self.grpc.runner
        self.engine = Engine(
            engine_index,
            store,
            clock,
            engine_runner,
            max_orchestrations=settings.max_concurrent_orchestrations,
        )
        if self.grpc is not None:
            self.grpc.attach(self.engine)
        self.static_dir = static_dir
        self._runner: web.AppRunner | None = None

    async def _call_trigger(
        self, info: FunctionInfo, value: Any, data: dict[str, Any] | None = None
    ) -> Any:
        """A timer, queue or blob function, within functionTimeout (they run in this process)."""
        work = self.invoker.call(info, value, data)
        timeout = self.settings.function_timeout
        return await call_within(timeout, self.executor, info.name, not info.is_async, work)

    def _written(self, kind: str, target: str) -> None:
        self.triggers.written(kind, target)

    @property
    def base_url(self) -> str:
        return self.listen.origin

    def client_json(self) -> str:
        return client_binding_json(self.base_url, self.settings.hub_name)

    def build_app(self) -> web.Application:
        check = HostCheck(self.listen.host, self.settings.allowed_hosts)
        guard = RequestGuard(check, lambda: self.listen.port)
        cors = cors_middleware(
            self.settings.cors_origins, self.settings.cors_credentials, skip=guard.is_own
        )
        app = web.Application(
            middlewares=[guard.middleware, cors, host_errors_middleware],
            client_max_size=MAX_REQUEST_BYTES,
        )
        api = ManagementApi(self.engine, self.settings.hub_name, self.settings.request_deadline)
        app.add_subapp(WEBHOOK_PATH, guard.own(api.app()))
        store = self.engine.store
        hub = store.hub if isinstance(store, AzureStore) else self.settings.hub_name
        kind = "memory" if isinstance(store, MemoryStore) else "azure"
        dashboard = DashboardApi(self.engine, hub, kind, api.deadline)
        app.add_subapp(DASHBOARD_PATH, guard.own(dashboard.app()))
        self._functions = HttpFunctions(self.index.http, self.settings.route_prefix, self.runner)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """HTTP functions first (routes are case-insensitive), then the static web folder."""
        found = self._functions.match(request.path, request.method)
        if isinstance(found, frozenset):
            raise web.HTTPMethodNotAllowed(request.method, sorted(found))
        if found is not None:
            return await self._functions.handle(request, found)
        if self.static_dir and request.method in ("GET", "HEAD"):
            root = self.static_dir.resolve()
            wanted = (root / request.path.lstrip("/")).resolve()
            if wanted.is_dir():
                wanted = wanted / "index.html"
            if wanted.is_relative_to(root) and wanted.is_file():
                return web.FileResponse(wanted)
        raise web.HTTPNotFound()

    async def start(self) -> None:
        """Listen first, then open the store and resume work.

        Work resumed after a restart may call the host (an activity with a durable client
        starting another workflow): it must find the host answering. Requests that arrive
        before the engine is ready wait for it, within their deadline.
        """
        for finding in check_orchestrators(self.index, self.settings.app_dir):
            log.warning("Warning: %s", finding)
        if self.listen.port:  # the client binding's URL is known: workers load the app meanwhile
            self.runner.launch()
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen.host, self.listen.port, reuse_address=True)
        try:
            await site.start()
            if self.grpc is not None:
                await self.grpc.start()
        except BaseException:  # the port is taken, say: no worker outlives this start
            await self.runner.stop()
            raise
        if self.listen.port == 0:
            sockets = site._server.sockets  # type: ignore[union-attr]
            self.listen.port = sockets[0].getsockname()[1]
        if isinstance(self.engine.store, AzureStore):  # kept in the lease: the CLI finds us
            self.engine.store.address = self.base_url
        # Workers load the app while the engine opens the store: the runner's task runs first
        # and starts its processes at once (they get the client binding's URL, known now), so
        # work the engine resumes waits in their queues rather than for the slower of the two.
        await asyncio.gather(self.runner.start(), self.engine.start())
        # Last: a timer that runs on start-up may call this host's own HTTP API.
        await self.triggers.start()

    async def wait_idle(self) -> None:
        """Until no episode, activity, delivery or timer function is under way."""
        while True:
            await self.triggers.timers.wait_idle()
            await self.engine.wait_idle()
            if not self.triggers.timers.busy:
                return

    async def stop(self) -> None:
        await self.triggers.stop()
        if self.grpc is not None:
            await self.grpc.stop()
        if self._runner:
            await self._runner.cleanup()
        await self.runner.stop()
        await self.engine.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.accounts.close()

    def describe(self) -> list[str]:
        """Lines like `func start` prints: each function with its trigger and URL."""
        lines = ["Functions:", ""]
        warnings = []
        for name, info in sorted(self.index.functions.items()):
            if info.trigger_type == "httpTrigger":
                methods = ",".join(info.methods or ["GET", "POST", "PUT", "DELETE", "PATCH"])
                prefix = f"/{self.settings.route_prefix}" if self.settings.route_prefix else ""
                lines.append(f"        {name}: [{methods}] {self.base_url}{prefix}/{info.route}")
            elif info.trigger_type in ("timerTrigger", "queueTrigger", "blobTrigger"):
                lines.append(f"        {name}: {self.triggers.describe(info)}")
            else:
                lines.append(f"        {name}: {info.trigger_type}")
            for binding in unsupported(info.extras):
                warnings.append(
                    f"Warning: {name}: binding '{binding.name}' ({binding.type}) is not "
                    "supported by devhost; the function runs and what it would send is logged"
                )
        for name, kind in self.index.skipped:
            if kind == "disabled":
                lines.append(f"        {name}: disabled")
            else:
                lines.append(f"        {name}: {kind} (not supported by devhost; not started)")
        if isinstance(self.runner, WorkerPool):
            count = self.runner.count
            where = (
                f"{count} worker process{'es' if count > 1 else ''} "
                f"(FUNCTIONS_WORKER_PROCESS_COUNT): {self.runner.lanes()}"
            )
        else:
            where = "the host process (in-process)"
        lines += ["", f"Functions run in {where}"]
        lines += [f"Durable Functions HTTP API: {self.base_url}{WEBHOOK_PATH}/"]
        lines.append(f"Dashboard: {self.base_url}{DASHBOARD_PATH}/")
        if self.grpc is not None:
            lines.append(
                f"Durable Task gRPC (durabletask workers and clients): {self.grpc.address}, "
                f"task hub '{self.settings.hub_name}'"
            )
        return lines + ([""] + warnings if warnings else [])
