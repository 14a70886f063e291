"""A language worker process: loads the app as the host does and runs what the host sends it.

    python -m devhost.workers.worker      (started by devhost.workers.pool, never by hand)

Orchestrator episodes and entity batches are CPU work: one thread runs them one at a time, in
order, and holds each instance's history (bounded, least recently used first) and its warm state.
Sync activities run on a thread pool of PYTHON_THREADPOOL_THREAD_COUNT threads; async functions
and HTTP functions on the event loop, so a player's request never waits behind queued episodes or
activities (sync HTTP functions get a thread pool of their own for the same reason). With two
workers or more, the host sends HTTP functions to some and background work to the others, which
lower their own CPU priority (see `devhost.workers.pool`).

The worker exits when its channel from the host ends: a host that was killed leaves no worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import os
import queue
import signal
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..app.app_index import FunctionIndex, index_app
from ..app.bindings import BindingIO
from ..app.http_call import call_http
from ..app.invoke import Invoker, failed_activity, run_activity, run_sync_activity
from ..app.load_errors import AppLoadError, describe_exception
from ..engine.entities import run_operations
from ..engine.replay import HistoryCache, ReplayResult
from ..engine.warm import WarmOrchestrations
from ..runner import EntityBatch
from ..settings import HostSettings
from .protocol import (
    Answer,
    Channel,
    Crashed,
    Discard,
    GetWarmStats,
    LoadFailed,
    LogLine,
    Ready,
    RunActivity,
    RunEntityBatch,
    RunEpisode,
    RunHttp,
    Setup,
    Stop,
    UnknownHistory,
    Written,
    frame,
    read_message,
    widen,
)

SWITCH_SECONDS = 0.001  # how soon a busy thread yields the GIL to a waiting one
BACKGROUND_NICE = 19  # a background worker's niceness: a core goes to requests first
CPU_BATCH = 8  # waiting episodes run before their answers are sent together
MIN_HISTORIES = 1000  # instances whose history a worker keeps, at least (else the warm limit)
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_function", default=None
)


class ChannelLogHandler(logging.Handler):
    """Sends log records to the host, with the name of the function they were logged in."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = LogLine(record.levelno, record.name, self.format(record), current_function.get())
            self.channel.send(line)
        except Exception:  # noqa: BLE001 - logging must never break the function
            self.handleError(record)


@dataclass
class KnownHistory:
    """An instance's history as this worker holds it, and its last episode's new events (which
    join the history, as these very objects, once the host has stored them)."""

    execution_id: str
    cache: HistoryCache = field(default_factory=HistoryCache)
    pending: list[dict[str, Any]] = field(default_factory=list)


def stored_events(
    pending: list[dict[str, Any]], appended: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The appended events, with the last episode's own event objects where they were stored:
    the warm state recognises its episode by those objects."""
    if appended[: len(pending)] == pending:
        return [*pending, *appended[len(pending) :]]
    return appended


class Orchestrations:
    """Episodes and entity batches, on one thread, one at a time."""

    def __init__(self, index: FunctionIndex, settings: HostSettings) -> None:
        self.index = index
        self.warm = WarmOrchestrations(settings.warm_instances, verify=settings.verify_warm)
        self.limit = max(MIN_HISTORIES, settings.warm_instances)
        self.histories: OrderedDict[str, KnownHistory] = OrderedDict()

    def episode(self, request: RunEpisode) -> ReplayResult | UnknownHistory:
        known = self.histories.pop(request.instance_id, None)
        if request.base == 0:
            known = KnownHistory(request.execution_id)
            known.cache.extend(request.appended)
        elif (
            known is None
            or known.execution_id != request.execution_id
            or len(known.cache.events) != request.base
        ):
            return UnknownHistory()
        else:
            known.cache.extend(stored_events(known.pending, request.appended))
        result = self.warm.run(
            self.index.orchestrators[request.name].user_function,
            request.instance_id,
            known.cache,
            request.new_events,
            request.parent_instance_id,
            request.input_json,
        )
        known.pending = request.new_events
        self.histories[request.instance_id] = known
        while len(self.histories) > self.limit:
            self.histories.popitem(last=False)
        return dataclasses.replace(result, state=None)  # the host needs no parsed SDK state

    def entity_batch(self, request: RunEntityBatch) -> EntityBatch:
        record = request.record
        handle = self.index.entities[record.name.lower()].user_function
        outcomes = run_operations(handle, record, request.requests)
        return EntityBatch(record.entity_state, outcomes)

    def discard(self, instance_id: str) -> None:
        self.histories.pop(instance_id, None)
        self.warm.discard(instance_id)


class Worker:
    """Serves the host's requests until its channel ends or it says Stop."""

    def __init__(self, channel: Channel, setup: Setup, index: FunctionIndex) -> None:
        settings = setup.settings
        self.channel = channel
        self.index = index
        self.orchestrations = Orchestrations(index, settings)
        self.cpu_work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        io = None
        if any(info.io_bindings for info in index.functions.values()):
            # The storage SDKs take a while to import: only for apps that use storage bindings.
            from ..app.queue_options import QueueOptions
            from ..app.storage_account import StorageAccounts

            io = BindingIO(
                StorageAccounts(),
                queue_base64=QueueOptions.from_host_json(settings.host_json).base64,
                on_write=lambda kind, target: channel.send(Written(kind, target)),
            )
        app_dir = str(settings.app_dir)
        self.executor = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="worker-fn")
        self.invoker = Invoker(self.executor, app_dir, lambda: setup.client_json, io)
        http_executor = ThreadPoolExecutor(thread_name_prefix="worker-http")
        self.http_invoker = Invoker(http_executor, app_dir, lambda: setup.client_json, io)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task] = set()

    def run_cpu_work(self) -> None:
        """The episode thread: episodes, entity batches and the warm state they share. The
        requests already waiting run together and are answered in one write."""
        while True:
            batch = [self.cpu_work.get()]
            while len(batch) < CPU_BATCH:
                try:
                    batch.append(self.cpu_work.get_nowait())
                except queue.Empty:
                    break
            answers = [frame(a) for a in map(self.run_cpu_request, batch) if a is not None]
            if answers:
                self.channel.write(b"".join(answers))

    def run_cpu_request(self, request: Any) -> Answer | None:
        try:
            if isinstance(request, RunEpisode):
                current_function.set(request.name)
                value: Any = self.orchestrations.episode(request)
            elif isinstance(request, RunEntityBatch):
                current_function.set(request.record.name)
                value = self.orchestrations.entity_batch(request)
            elif isinstance(request, GetWarmStats):
                value = self.orchestrations.warm.stats
            else:
                self.orchestrations.discard(request.instance_id)
                return None
        except BaseException as err:  # noqa: BLE001 - even SystemExit: the thread must go on
            value = Crashed("".join(traceback.format_exception(err)))
        finally:
            current_function.set(None)
        return Answer(request.call_id, value)

    def receive(self, message: object) -> None:
        """On the reader thread: hand a request straight to where it runs (the event loop
        only for what runs there), so that no request waits for a busy thread to pass it on."""
        if isinstance(message, RunEpisode | RunEntityBatch | GetWarmStats | Discard):
            self.cpu_work.put(message)
        elif isinstance(message, RunActivity):
            self.activity(message)
        elif isinstance(message, RunHttp):
            self.on_loop(self.http, message)
        elif isinstance(message, Stop):
            logging.shutdown()
            os._exit(0)

    def activity(self, request: RunActivity) -> None:
        info = self.index.activities[request.name]
        if info.is_async:
            self.on_loop(self.async_activity, request)
            return

        def run() -> None:
            current_function.set(request.name)
            try:
                outcome = run_sync_activity(self.invoker, info, request.input_json)
            except BaseException as err:  # noqa: BLE001 - reported, as the loop's twin does
                outcome = failed_activity(request.name, err)
            self.channel.send(Answer(request.call_id, outcome))

        self.executor.submit(run)

    async def async_activity(self, request: RunActivity) -> None:
        current_function.set(request.name)
        info = self.index.activities[request.name]
        try:
            outcome = await run_activity(self.invoker, info, request.input_json)
        except BaseException as err:  # noqa: BLE001 - SystemExit too: the host awaits an answer
            outcome = failed_activity(request.name, err)
        self.channel.send(Answer(request.call_id, outcome))

    async def http(self, request: RunHttp) -> None:
        current_function.set(request.name)
        answer = await call_http(self.http_invoker, self.index.http[request.name], request.request)
        self.channel.send(Answer(request.call_id, answer))

    def on_loop(self, function: Callable[[Any], Coroutine[Any, Any, None]], request: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.spawn, function, request)

    def spawn(self, function: Callable[[Any], Coroutine[Any, Any, None]], request: Any) -> None:
        task = asyncio.ensure_future(function(request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def start(self, loop: asyncio.AbstractEventLoop, early: list[object]) -> None:
        """Serve on `loop`, first the requests that arrived while the app loaded, in order."""
        self.loop = loop
        threading.Thread(target=self.run_cpu_work, name="worker-episodes", daemon=True).start()
        for message in early:
            self.receive(message)


def read_until_end(inbox: BinaryIO, deliver: Any) -> None:
    """The reader thread: every message to `deliver`; at the end of the channel, exit."""
    while True:
        message = read_message(inbox)
        if message is None:
            os._exit(0)  # the host is gone (stopped or killed): so is its worker
        deliver(message)


def main() -> int:
    # The protocol gets its own copies of fds 0 and 1: what user code prints goes to stderr
    # (which the host logs line by line) and what it reads from stdin is empty.
    channel = Channel(os.dup(1))
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    inbox = os.fdopen(os.dup(0), "rb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    widen(channel.fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a SIGINT sent to us alone: the host stops us
    sys.setswitchinterval(SWITCH_SECONDS)
    setup = read_message(inbox)
    if not isinstance(setup, Setup):
        return 2
    if setup.background and hasattr(os, "setpriority"):
        # Linux sets this thread's niceness only: before any other thread starts, which all
        # inherit it.
        os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)
    root = logging.getLogger()
    root.handlers[:] = [ChannelLogHandler(channel)]
    root.setLevel(setup.log_level)
    logging.getLogger("azure").setLevel(logging.WARNING)

    early: list[object] = []
    lock = threading.Lock()
    worker: Worker | None = None

    def deliver(message: object) -> None:
        with lock:
            if worker is None:
                early.append(message)
                return
        worker.receive(message)

    # Reading starts before the app loads, so the host never blocks on a full pipe meanwhile.
    threading.Thread(target=read_until_end, args=(inbox, deliver), daemon=True).start()
    app_dir = Path(setup.settings.app_dir)
    root.setLevel(max(setup.log_level, logging.ERROR))  # the host showed the load's warnings
    try:
        index = index_app(app_dir)
    except Exception as err:  # noqa: BLE001 - reported to the host, which refuses to start
        reason = str(err) if isinstance(err, AppLoadError) else describe_exception(err, app_dir)
        channel.send(LoadFailed(reason))
        return 2
    root.setLevel(setup.log_level)
    candidate = Worker(channel, setup, index)

    async def serve() -> None:
        """Until Stop, or until the reader thread ends the process."""
        nonlocal worker
        channel.send(Ready(os.getpid()))  # before any function runs: a crash now is theirs
        with lock:
            candidate.start(asyncio.get_running_loop(), early)
            worker = candidate
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
