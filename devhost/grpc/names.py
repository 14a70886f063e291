"""Orchestrator, activity and entity names served by Durable Task workers: any name at all.

The engine checks a name against the app's index before it starts an instance, an activity or a
sub-orchestration. A Durable Task backend accepts any name instead: the worker that registered
it may connect later, and until then the work waits. `worker_index` gives the engine an index
where every name is known: the app's own functions as they are, and every other name as a
stand-in for a function that runs in a connected worker.

The stand-in orchestrator is never run for an episode (the runner sends episodes to a worker);
the engine calls it only for its dry replay after a restart, where it answers "nothing to replay
here: this SDK keeps its own state" (`INCREMENTAL_STATE`).
"""

from __future__ import annotations

import functools

from ..app.app_index import FunctionIndex, FunctionInfo
from ..app.binding_spec import ACTIVITY_TRIGGER, ENTITY_TRIGGER, ORCHESTRATION_TRIGGER
from ..engine.replay import INCREMENTAL_STATE


def _worker_orchestrator(_context: object) -> str:
    """The dry replay of an orchestrator that runs in a worker: no actions, incremental."""
    return INCREMENTAL_STATE


def _worker_activity(*_args: object) -> None:
    raise RuntimeError("a Durable Task worker's activity runs in that worker, not in devhost")


def _worker_entity(*_args: object) -> None:
    raise RuntimeError("a Durable Task worker's entity runs in that worker, not in devhost")


STAND_INS_KEPT = 1024  # stand-ins kept, for the most recently used names
STAND_INS = {
    ORCHESTRATION_TRIGGER: _worker_orchestrator,
    ACTIVITY_TRIGGER: _worker_activity,
    ENTITY_TRIGGER: _worker_entity,
}


@functools.lru_cache(maxsize=STAND_INS_KEPT)
def stand_in(trigger_type: str, name: str) -> FunctionInfo:
    """The stand-in for a worker's function. Names are chosen by clients, so only the most
    recently used are kept; any other is made again, as it differs only by its name."""
    return FunctionInfo(
        name=name,
        trigger_type=trigger_type,
        trigger_param="context",
        user_function=STAND_INS[trigger_type],
        binding={"type": trigger_type, "name": "context", "direction": "in"},
    )


class WorkerNames(dict[str, FunctionInfo]):
    """The app's functions of one trigger type; every other name is a worker's function."""

    def __init__(self, app_functions: dict[str, FunctionInfo], trigger_type: str) -> None:
        super().__init__(app_functions)
        self.trigger_type = trigger_type

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __missing__(self, name: str) -> FunctionInfo:
        return stand_in(self.trigger_type, name)

    def get(self, name: str, default: object = None) -> FunctionInfo:  # type: ignore[override]
        return self[name]


def worker_index(app: FunctionIndex | None = None) -> FunctionIndex:
    """An index where the app's orchestrators, activities and entities are as they are, and
    every other name belongs to a Durable Task worker."""
    app = app or FunctionIndex()
    index = FunctionIndex(functions=dict(app.functions), skipped=list(app.skipped), model=app.model)
    index.orchestrators = WorkerNames(app.orchestrators, ORCHESTRATION_TRIGGER)
    index.activities = WorkerNames(app.activities, ACTIVITY_TRIGGER)
    index.entities = WorkerNames(app.entities, ENTITY_TRIGGER)
    return index
