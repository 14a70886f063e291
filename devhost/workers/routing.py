"""Which worker runs a call.

Lanes: with two workers or more and an app with HTTP functions, the first half (at least one)
run HTTP functions and nothing else; the others run orchestrations, entities and activities at a
lower CPU priority (the worker lowers its own). On a busy machine a player's request then gets a
core before background work does, rather than a time slice beside it: replays and activities
catch up when requests leave them room. A lone worker, or the workers of an app without HTTP
functions, run everything.

- an orchestration's episodes are sticky: they go to the worker that ran its last episode, which
  holds its history and warm state; the host remembers, per instance, that worker and how many
  history events it holds, and sends only the events appended since (a worker that lacks them
  answers UnknownHistory, and gets the whole history). New instances go to the least loaded worker;
- activities and entity batches go to the least loaded worker (activities once they have a slot:
  see `waiting`);
- HTTP functions go to the HTTP worker with the fewest HTTP calls in flight, which serves them on
  its event loop (a lone worker does so beside, not behind, its episode and activity threads).

While a lane has no worker with the app loaded (its only one is being replaced, or its
replacement could not load the app), the other lane's workers take its calls; an orchestration
placed there moves back to its lane at its next episode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..engine.replay import EpisodeCall
from .calls import Call, WorkerError
from .processes import Lane, WorkerProcess, WorkerProcesses
from .protocol import Discard, RunEpisode


def lane_of(number: int, count: int, has_http: bool) -> Lane:
    """Worker `number`'s lane: lanes need two workers and an app with HTTP functions."""
    http = count // 2 if count > 1 and has_http else 0
    return "all" if not http else "http" if number <= http else "background"


@dataclass
class Placement:
    """Where an orchestration's episodes run, and how much of its history that worker holds."""

    worker: WorkerProcess
    execution_id: str
    events: int


@dataclass
class Routed:
    """A call and the worker chosen to run it."""

    worker: WorkerProcess
    call: Call


class CallRouting:
    """Chooses workers by lane and load, and keeps each orchestration's placement."""

    def __init__(self, processes: WorkerProcesses, call_ids: Iterator[int]) -> None:
        self.processes = processes
        self.call_ids = call_ids
        self._placements: dict[str, Placement] = {}

    def episode(self, call: EpisodeCall, whole: bool) -> Routed:
        """The episode for its instance's worker, with the history that worker lacks (all of
        it if `whole`, or if it moves to another worker)."""
        placement = self._placements.get(call.instance_id)
        events = call.history.events
        serving = self.serving("background")
        if placement is None or not any(w is placement.worker for w in serving):
            if placement is not None and placement.worker.alive:  # moving back to its lane
                self.processes.send(placement.worker, Discard(call.instance_id))
            worker, base = self.least_loaded(), 0
        else:
            worker = placement.worker
            same = placement.execution_id == call.execution_id and placement.events <= len(events)
            base = placement.events if same and not whole else 0
        self._placements[call.instance_id] = Placement(worker, call.execution_id, len(events))
        message = RunEpisode(
            next(self.call_ids),
            call.name,
            call.instance_id,
            call.execution_id,
            base,
            events[base:],
            call.new_events,
            call.parent_instance_id,
            call.input_json,
        )
        return Routed(worker, Call("episode", call.name, message, episode=call))

    def discard(self, instance_id: str) -> None:
        """The instance has finished: its worker forgets what it held for it."""
        placement = self._placements.pop(instance_id, None)
        if placement is not None and placement.worker.alive:
            self.processes.send(placement.worker, Discard(instance_id))

    def least_loaded(self) -> WorkerProcess:
        """The background worker with the least work in flight."""
        return min(self.serving("background"), key=lambda w: w.load)

    def http_worker(self) -> WorkerProcess:
        """The HTTP worker with the fewest HTTP calls in flight."""
        return min(self.serving("http"), key=lambda w: w.http_calls)

    def serving(self, lane: Lane) -> list[WorkerProcess]:
        """The workers to run a call of `lane`: its lane's that have loaded the app; else any
        that has; else any live one (the call waits in its channel until the app is loaded)."""
        live = self.live()
        loaded = [w for w in live if w.loaded]
        return [w for w in loaded if w.lane in (lane, "all")] or loaded or live

    def live(self) -> list[WorkerProcess]:
        live = [w for w in self.processes.workers if w.alive]
        if not live:
            raise WorkerError("no worker process is running (see the log for why they ended)")
        return live
