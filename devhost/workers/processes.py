"""The worker processes' life: start one (it loads the app), read what it says, replace it when
it exits, end it.

Results arrive on one reader thread per worker and reach the loop in one wake-up per burst;
what the loop sends a worker in one turn goes in one write. Answers go to the pool; a worker's
log lines, prints and "written" notices are handled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..app.load_errors import AppLoadError
from ..settings import HostSettings
from .calls import Call
from .protocol import (
    Answer,
    Channel,
    LoadFailed,
    LogLine,
    Ready,
    Setup,
    Stop,
    Written,
    frame,
    read_message,
    widen,
)

log = logging.getLogger("devhost.workers")
Lane = Literal["http", "background", "all"]  # "all": a lone worker, or an app without HTTP
STOP_SECONDS = 3  # how long a stop waits for workers before killing them


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
    recycled: bool = False  # killed by the host: a function of its own timed out

    @property
    def loaded(self) -> bool:
        """Whether it has loaded the app and can run a call now."""
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None

    @property
    def load(self) -> int:
        return len(self.calls) - self.http_calls


@dataclass
class Exit:
    """A worker that ended while the pool was running, and how."""

    worker: WorkerProcess
    code: int | None
    on_start: bool  # it never loaded the app: not replaced, since another would fail the same way

    @property
    def start_failure(self) -> str:
        return f"worker process {self.worker.number} exited with code {self.code} on start"


class WorkerProcesses:
    """The live worker processes, in number order; `on_answer` and `on_exit` run on the loop."""

    def __init__(
        self,
        settings: HostSettings,
        client_json: Callable[[], str],
        on_answer: Callable[[WorkerProcess, Answer], None],
        on_exit: Callable[[Exit], None],
        on_written: Callable[[str, str], None],
    ) -> None:
        self.settings = settings
        self.client_json = client_json
        self.on_answer = on_answer
        self.on_exit = on_exit
        self.on_written = on_written
        self.workers: list[WorkerProcess] = []
        self.stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: list[tuple[WorkerProcess, object | None]] = []  # from reader threads
        self._arrived_lock = threading.Lock()
        self._drain_scheduled = False
        self._flush_scheduled = False

    def launch(self, lanes: list[Lane]) -> None:
        """Start one worker per lane given, numbered from 1 (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self.workers = [self._spawn(n, lane) for n, lane in enumerate(lanes, start=1)]

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
        self.stopping = True
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

    # -- sending -----------------------------------------------------------------------------

    def send(self, worker: WorkerProcess, message: object) -> None:
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
            self.on_answer(worker, message)
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

    def recycle(self, worker: WorkerProcess) -> None:
        """Kill a worker and replace it now (its reader thread then finds it gone already)."""
        worker.recycled = True
        with contextlib.suppress(OSError):
            worker.process.kill()
        worker.process.wait()  # SIGKILL: at once
        self._exited(worker)

    def _exited(self, worker: WorkerProcess) -> None:
        """A worker ended: replace it (unless it never loaded the app), then tell the pool,
        which runs again elsewhere what it was running."""
        if self.stopping or not worker.alive:
            return
        worker.alive = False
        code = worker.process.returncode
        if not worker.ready.done() or worker.ready.exception() is not None:
            ended = Exit(worker, code, on_start=True)
            if not worker.ready.done():
                worker.ready.set_exception(AppLoadError(ended.start_failure))
            self.on_exit(ended)
            return
        if not worker.recycled:  # the pool logged why it killed a recycled one
            running = sorted({c.name for c in worker.calls.values() if c.name})
            log.error(
                "worker %d (pid %d) exited with code %s %s; starting another",
                worker.number,
                worker.pid,
                code,
                "while running " + ", ".join(map(repr, running)) if running else "while idle",
            )
        replacement = self._spawn(worker.number, worker.lane)
        replacement.ready.add_done_callback(_report_failed_start)
        self.workers[self.workers.index(worker)] = replacement
        self.on_exit(Exit(worker, code, on_start=False))


def _report_failed_start(ready: asyncio.Future) -> None:
    if not ready.cancelled() and ready.exception() is not None:
        log.error("a replacement worker could not start: %s", ready.exception())
