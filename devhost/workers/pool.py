"""The host's side of its language worker processes: start them, route work, replace the dead.

Lanes: with two workers or more and an app with HTTP functions, the first half (at least one)
run HTTP functions and nothing else; the others run orchestrations, entities and activities at a
lower CPU priority (the worker lowers its own). On a busy machine a player's request then gets a
core before background work does, rather than a time slice beside it: replays and activities
catch up when requests leave them room. A lone worker, or the workers of an app without HTTP
functions, run everything.

Routing:
- an orchestration's episodes are sticky: they go to the worker that ran its last episode, which
  holds its history and warm state; the host remembers, per instance, that worker and how many
  history events it holds, and sends only the events appended since (a worker that lacks them
  answers UnknownHistory, and gets the whole history). New instances go to the least loaded worker;
- activities and entity batches go to the least loaded worker; at most
  `maxConcurrentActivityFunctions` activities (host.json) run at once, the others wait in the
  host (see `WaitingActivities` for their order);
- HTTP functions go to the HTTP worker with the fewest HTTP calls in flight, which serves them on
  its event loop (a lone worker does so beside, not behind, its episode and activity threads).

While a lane has no worker with the app loaded (its only one is being replaced, or its
replacement could not load the app), the other lane's workers take its calls; an orchestration
placed there moves back to its lane at its next episode.

A worker that exits (os._exit in a function, a kill) is replaced at once, and what it was running
is sent again to a live worker, as the Functions host retries it (activities run at least once,
episodes and entity batches are pure until the host commits them), up to MAX_ATTEMPTS times;
then that invocation fails with the reason. HTTP calls are not retried (a request is not
idempotent): they answer 500 with the reason.

Results arrive on one reader thread per worker and reach the loop in one wake-up per burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..app.app_index import FunctionIndex
from ..app.http_call import JSON, HttpAnswer, HttpCall
from ..app.invoke import ActivityOutcome
from ..app.load_errors import AppLoadError
from ..engine.entities import EntityRequest, OperationOutcome
from ..engine.replay import EpisodeCall, ReplayResult
from ..engine.warm import WarmOrchestrations, WarmStats
from ..runner import ActivityDone, EntityBatch, FunctionRunner
from ..settings import HostSettings
from ..taskhub.model import InstanceRecord
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

log = logging.getLogger("devhost.workers")
Lane = Literal["http", "background", "all"]  # "all": a lone worker, or an app without HTTP
MAX_ATTEMPTS = 3  # runs of one invocation before a worker's death fails it
START_SECONDS = 60  # how long a worker may take to load the app
STOP_SECONDS = 3  # how long a stop waits for workers before killing them
MAX_PASSED_OVER = 5.0  # seconds a waiting activity may be passed over by newer ones


class WorkerError(Exception):
    """A worker failed running a request for a reason of its own (not the function's)."""


@dataclass
class Call:
    """An invocation sent to a worker and not yet answered."""

    kind: str  # episode, entity, activity, http, stats
    name: str  # the function's name, for the reason of a failure
    message: Any
    future: asyncio.Future | None = None
    done: ActivityDone | None = None
    episode: EpisodeCall | None = None
    record: InstanceRecord | None = None
    attempts: int = 1


@dataclass
class WorkerProcess:
    """One worker: its process, its channel, and what it is running."""

    number: int
    process: subprocess.Popen
    channel: Channel
    ready: asyncio.Future
    calls: dict[int, Call] = field(default_factory=dict)
    http_calls: int = 0
    outbox: list[bytes] = field(default_factory=list)  # frames sent at the end of this turn
    pid: int = 0
    alive: bool = True
    lane: Lane = "all"

    @property
    def loaded(self) -> bool:
        """Whether it has loaded the app and can run a call now."""
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None

    @property
    def load(self) -> int:
        return len(self.calls) - self.http_calls


@dataclass
class Placement:
    """Where an orchestration's episodes run, and how much of its history that worker holds."""

    worker: WorkerProcess
    execution_id: str
    events: int


class WorkerPool(FunctionRunner):
    """`count` worker processes, each with the app loaded."""

    def __init__(
        self,
        index: FunctionIndex,
        settings: HostSettings,
        count: int,
        client_json: Callable[[], str],
        on_written: Callable[[str, str], None] = lambda kind, target: None,
    ) -> None:
        super().__init__(index)
        self.settings = settings
        self.count = count
        self.client_json = client_json
        self.on_written = on_written
        self.workers: list[WorkerProcess] = []
        self._placements: dict[str, Placement] = {}
        self._activities_running = 0
        self._activities_waiting = WaitingActivities()
        self._ids = itertools.count(1)
        self._arrived: list[tuple[WorkerProcess, object | None]] = []  # from reader threads
        self._arrived_lock = threading.Lock()
        self._drain_scheduled = False
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # Each worker keeps its warm instances with these settings, on this same SDK.
        self._warm_line = WarmOrchestrations(
            settings.warm_instances, settings.verify_warm
        ).describe()
        self._started = asyncio.Event()  # a request may arrive while the workers load the app

    # -- lifecycle ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the worker processes, which load the app meanwhile (`start` waits for them)."""
        if not self.workers:
            self._loop = asyncio.get_running_loop()
            self.workers = [self._spawn(n, self._lane_of(n)) for n in range(1, self.count + 1)]

    async def start(self) -> None:
        """Start the workers (unless launched) and wait until each has loaded the app."""
        self.launch()
        try:
            async with asyncio.timeout(START_SECONDS):
                for worker in self.workers:
                    await worker.ready
        except BaseException:
            await self.stop()
            raise
        self._started.set()

    def _lane_of(self, number: int) -> Lane:
        """Worker `number`'s lane: lanes need two workers and an app with HTTP functions."""
        http = self.count // 2 if self.count > 1 and self.index.http else 0
        return "all" if not http else "http" if number <= http else "background"

    def _spawn(self, number: int, lane: Lane) -> WorkerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost.workers.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.settings.app_dir,
            process_group=0,  # a terminal's Ctrl-C reaches the host alone, which stops us
        )
        assert process.stdin and process.stdout and process.stderr
        widen(process.stdin.fileno())
        assert self._loop is not None
        worker = WorkerProcess(
            number, process, Channel(process.stdin.fileno()), self._loop.create_future(), lane=lane
        )
        level = min(logging.INFO, logging.getLogger().getEffectiveLevel())
        worker.channel.send(
            Setup(self.settings, self.client_json(), level, background=lane == "background")
        )
        threading.Thread(
            target=self._read, args=(worker,), name=f"worker-{number}-out", daemon=True
        ).start()
        threading.Thread(
            target=self._read_stderr, args=(worker,), name=f"worker-{number}-err", daemon=True
        ).start()
        return worker

    async def stop(self) -> None:
        """Ask each worker to stop, then kill those still running; pending calls are cancelled."""
        self._stopping = True
        for worker in self.workers:
            worker.alive = False
            with contextlib.suppress(OSError):
                worker.channel.send(Stop())
            for call in worker.calls.values():
                if call.future is not None and not call.future.done():
                    call.future.cancel()
            worker.calls.clear()
        await asyncio.gather(*(asyncio.to_thread(self._end, w) for w in self.workers))

    @staticmethod
    def _end(worker: WorkerProcess) -> None:
        try:
            worker.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        if worker.process.stdin:
            worker.process.stdin.close()

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [w.pid for w in self.workers if w.alive]

    def describe(self) -> str:
        return f"{self._warm_line}; functions run in {self.count} worker processes"

    def lanes(self) -> str:
        """How the workers share the work, for the banner."""
        http = sum(w.lane == "http" for w in self.workers)
        if not http:
            return "each runs every function" if self.count > 1 else "it runs every function"
        return (
            f"{http} for HTTP functions, {self.count - http} at low CPU priority for "
            "orchestrations, entities and activities"
        )

    # -- invocations -------------------------------------------------------------------------

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        value = await self._invoke(self._episode_call(call, whole=False))
        if isinstance(value, UnknownHistory):
            value = await self._invoke(self._episode_call(call, whole=True))
        return value

    def _episode_call(self, call: EpisodeCall, whole: bool) -> tuple[WorkerProcess, Call]:
        placement = self._placements.get(call.instance_id)
        events = call.history.events
        serving = self._serving("background")
        if placement is None or not any(w is placement.worker for w in serving):
            if placement is not None and placement.worker.alive:  # moving back to its lane
                self._send(placement.worker, Discard(call.instance_id))
            worker, base = self._least_loaded(), 0
        else:
            worker = placement.worker
            same = placement.execution_id == call.execution_id and placement.events <= len(events)
            base = placement.events if same and not whole else 0
        self._placements[call.instance_id] = Placement(worker, call.execution_id, len(events))
        message = RunEpisode(
            next(self._ids),
            call.name,
            call.instance_id,
            call.execution_id,
            base,
            events[base:],
            call.new_events,
            call.parent_instance_id,
            call.input_json,
        )
        return worker, Call("episode", call.name, message, episode=call)

    def discard(self, instance_id: str) -> None:
        placement = self._placements.pop(instance_id, None)
        if placement is not None and placement.worker.alive:
            self._send(placement.worker, Discard(instance_id))

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        message = RunEntityBatch(next(self._ids), record, requests)
        call = Call("entity", record.name, message, record=record)
        return await self._invoke((self._least_loaded(), call))

    def start_activity(
        self, name: str, input_json: str | None, done: ActivityDone, created: datetime
    ) -> None:
        call = Call("activity", name, RunActivity(next(self._ids), name, input_json), done=done)
        self._activities_waiting.add(call, created.timestamp())
        self._start_waiting_activities()

    def _start_waiting_activities(self) -> None:
        """Start waiting activities while fewer than maxConcurrentActivityFunctions run."""
        while (
            self._activities_waiting
            and self._activities_running < self.settings.max_concurrent_activities
        ):
            activity = self._activities_waiting.take()
            try:
                worker = self._least_loaded()
            except WorkerError as err:
                assert activity.done is not None
                activity.done(failure(activity, str(err)))
                continue
            self._activities_running += 1
            self._dispatch(worker, activity)

    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        await self._started.wait()
        worker = min(self._serving("http"), key=lambda w: w.http_calls)
        return await self._invoke(
            (worker, Call("http", name, RunHttp(next(self._ids), name, call)))
        )

    async def warm_stats(self) -> WarmStats:
        total = WarmStats()
        for worker in [w for w in self.workers if w.alive]:
            call = Call("stats", "", GetWarmStats(next(self._ids)))
            stats = await self._invoke((worker, call))
            for name in ("warm", "replayed", "fell_back", "evicted"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total

    def _least_loaded(self) -> WorkerProcess:
        """The background worker with the least work in flight."""
        return min(self._serving("background"), key=lambda w: w.load)

    def _serving(self, lane: Lane) -> list[WorkerProcess]:
        """The workers to run a call of `lane`: its lane's that have loaded the app; else any
        that has; else any live one (the call waits in its channel until the app is loaded)."""
        live = self._live()
        loaded = [w for w in live if w.loaded]
        return [w for w in loaded if w.lane in (lane, "all")] or loaded or live

    def _live(self) -> list[WorkerProcess]:
        live = [w for w in self.workers if w.alive]
        if not live:
            raise WorkerError("no worker process is running (see the log for why they ended)")
        return live

    async def _invoke(self, target: tuple[WorkerProcess, Call]) -> Any:
        worker, call = target
        assert self._loop is not None
        call.future = self._loop.create_future()
        self._dispatch(worker, call)
        value = await call.future
        if isinstance(value, Crashed):
            raise WorkerError(f"worker failed running '{call.name}':\n{value.details}")
        return value

    def _dispatch(self, worker: WorkerProcess, call: Call) -> None:
        worker.calls[call.message.call_id] = call
        if call.kind == "http":
            worker.http_calls += 1
        self._send(worker, call.message)

    def _send(self, worker: WorkerProcess, message: object) -> None:
        """Queue a message: what the loop sends a worker in one turn goes in one write."""
        worker.outbox.append(frame(message))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for worker in self.workers:
            if worker.outbox:
                frames = b"".join(worker.outbox)
                worker.outbox.clear()
                # A worker that is gone is reported by its reader thread, and its calls sent again.
                with contextlib.suppress(OSError):
                    worker.channel.write(frames)

    # -- what workers say --------------------------------------------------------------------

    def _read(self, worker: WorkerProcess) -> None:
        """A worker's reader thread: every message, then the end (None) once it has exited."""
        stream = worker.process.stdout
        assert stream is not None
        while True:
            message = read_message(stream)
            if message is None:
                worker.process.wait()
                self._arrive(worker, None)
                return
            self._arrive(worker, message)

    def _arrive(self, worker: WorkerProcess, message: object | None) -> None:
        with self._arrived_lock:
            self._arrived.append((worker, message))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._arrived_lock:
            arrived = self._arrived
            self._arrived = []
            self._drain_scheduled = False
        for worker, message in arrived:
            if message is None:
                self._exited(worker)
            else:
                self._receive(worker, message)

    def _receive(self, worker: WorkerProcess, message: object) -> None:
        if isinstance(message, Answer):
            call = worker.calls.pop(message.call_id, None)
            if call is not None:
                if call.kind == "http":
                    worker.http_calls -= 1
                self._settle(call, message.value)
        elif isinstance(message, LogLine):
            self._log(worker, message)
        elif isinstance(message, Written):
            self.on_written(message.kind, message.target)
        elif isinstance(message, Ready):
            worker.pid = message.pid
            if not worker.ready.done():
                worker.ready.set_result(None)
        elif isinstance(message, LoadFailed) and not worker.ready.done():
            worker.ready.set_exception(AppLoadError(message.reason))

    def _settle(self, call: Call, value: Any) -> None:
        if self._stopping:
            return
        if call.kind == "activity":  # its slot goes to the next one waiting
            self._activities_running -= 1
            self._start_waiting_activities()
        if call.done is not None:
            call.done(value)
        elif call.future is not None and not call.future.done():
            call.future.set_result(value)

    def _log(self, worker: WorkerProcess, line: LogLine) -> None:
        """A worker's log record, in the host's log: user code's under `Function.<name>.User`,
        as the Functions host names them; devhost's own under their own names."""
        if line.function and not line.logger.startswith("devhost"):
            logging.getLogger(f"Function.{line.function}.User").log(line.level, "%s", line.message)
        else:
            logging.getLogger(line.logger).log(
                line.level, "worker %d: %s", worker.number, line.message
            )

    def _read_stderr(self, worker: WorkerProcess) -> None:
        """What a worker prints (user code's print() included), one log line a line."""
        stream = worker.process.stderr
        assert stream is not None
        for raw in stream:
            text = raw.decode(errors="replace").rstrip()
            if text:
                log.info("worker %d: %s", worker.number, text)

    # -- death -------------------------------------------------------------------------------

    def _exited(self, worker: WorkerProcess) -> None:
        """A worker ended: replace it, and run again elsewhere what it was running."""
        if self._stopping or not worker.alive:
            return
        worker.alive = False
        code = worker.process.returncode
        if not worker.ready.done() or worker.ready.exception() is not None:
            # It never loaded the app: starting another would fail the same way.
            reason = f"worker process {worker.number} exited with code {code} on start"
            if not worker.ready.done():
                worker.ready.set_exception(AppLoadError(reason))
            for call in worker.calls.values():
                self._settle(call, failure(call, reason))
            worker.calls.clear()
            return
        running = sorted({c.name for c in worker.calls.values() if c.name})
        log.error(
            "worker %d (pid %d) exited with code %s %s; starting another",
            worker.number,
            worker.pid,
            code,
            "while running " + ", ".join(repr(n) for n in running) if running else "while idle",
        )
        replacement = self._spawn(worker.number, worker.lane)
        replacement.ready.add_done_callback(_report_failed_start)
        self.workers[self.workers.index(worker)] = replacement
        for call in worker.calls.values():
            reason = f"worker process exited with code {code} while running '{call.name}'"
            if call.kind == "http" or call.attempts >= MAX_ATTEMPTS:
                self._settle(call, failure(call, reason))
                continue
            call.attempts += 1
            if call.episode is not None:  # the new worker gets the whole history
                target, again = self._episode_call(call.episode, whole=True)
                again.future, again.attempts = call.future, call.attempts
                self._dispatch(target, again)
            else:
                self._dispatch(self._least_loaded(), call)
        worker.calls.clear()


@dataclass(order=True)
class _Waiting:
    newest_first: float  # minus the calling orchestration's creation time
    number: int
    call: Call = field(compare=False)
    since: float = field(compare=False)
    taken: bool = field(default=False, compare=False)


class WaitingActivities:
    """Activities waiting for a slot: those of the most recently created orchestration first,
    unless one has waited MAX_PASSED_OVER seconds, which goes first then.

    Newest first finishes flows one at a time rather than all together: a player who just moved
    on gets their next step before everyone's first steps are done, so many players started at
    once are not all kept waiting until the end (nor do their next requests all come at once).
    The limit keeps an old orchestration's activities from waiting for ever behind new ones.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_age: list[_Waiting] = []  # a heap
        self._in_order: deque[_Waiting] = deque()
        self._numbers = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, call: Call, created: float) -> None:
        waiting = _Waiting(-created, next(self._numbers), call, self._clock())
        heapq.heappush(self._by_age, waiting)
        self._in_order.append(waiting)
        self._count += 1

    def take(self) -> Call:
        while self._in_order[0].taken:
            self._in_order.popleft()
        if self._clock() - self._in_order[0].since >= MAX_PASSED_OVER:
            chosen = self._in_order.popleft()
        else:
            while self._by_age[0].taken:
                heapq.heappop(self._by_age)
            chosen = heapq.heappop(self._by_age)
        chosen.taken = True
        self._count -= 1
        if not self._count:  # what is left in either is taken
            self._by_age.clear()
            self._in_order.clear()
        return chosen.call


def _report_failed_start(ready: asyncio.Future) -> None:
    if not ready.cancelled() and ready.exception() is not None:
        log.error("a replacement worker could not start: %s", ready.exception())


def failure(call: Call, reason: str) -> Any:
    """What an invocation answers when its worker died once too often."""
    if call.kind == "episode":
        return ReplayResult(actions=[], is_done=True, error=reason)
    if call.kind == "activity":
        return ActivityOutcome(ok=False, reason=reason, details=reason)
    if call.kind == "entity":
        requests = call.message.requests
        assert call.record is not None
        return EntityBatch(
            call.record.entity_state,
            [OperationOutcome(r, True, json.dumps(reason)) for r in requests],
        )
    if call.kind == "http":
        return HttpAnswer(500, {"Content-Type": JSON}, json.dumps({"error": reason}).encode())
    return WarmStats()
