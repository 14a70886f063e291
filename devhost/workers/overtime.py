"""host.json's functionTimeout for the calls sent to worker processes.

A call's time counts from when its worker has the app loaded (a replacement still loading it
keeps the calls sent to it waiting, through no fault of theirs). Past the limit the pool fails the
call with the host's message and replaces its worker, as the Functions host recycles a worker
whose function timed out; with no limit, one warning names a call still running after 5 minutes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..function_timeout import FunctionTimeout
from .calls import Call
from .processes import WorkerProcess


class CallTimeouts:
    """Watches each call sent to a worker; `on_timeout(worker, call)` when one runs too long."""

    def __init__(
        self, timeout: FunctionTimeout, on_timeout: Callable[[WorkerProcess, Call], None]
    ) -> None:
        self.timeout = timeout
        self.on_timeout = on_timeout

    def watch(self, worker: WorkerProcess, call: Call) -> None:
        """The call was just sent to `worker` (again, perhaps): its time starts afresh."""
        self.end(call)
        if call.kind == "stats":
            return
        if worker.loaded:
            self._start(worker, call)
        else:
            worker.ready.add_done_callback(lambda _: self._start(worker, call))

    def _start(self, worker: WorkerProcess, call: Call) -> None:
        if worker.calls.get(call.message.call_id) is call and worker.loaded:
            call.watch = self.timeout.watch(call.name, lambda: self.on_timeout(worker, call))

    @staticmethod
    def end(call: Call) -> None:
        """The call was answered, failed, or sent elsewhere."""
        if call.watch is not None:
            call.watch.cancel()
            call.watch = None
