"""What a test needs said when an instance is not where it expected: what it waits on, in words
with what the test can do about it, and which instances failed as non-deterministic."""

from __future__ import annotations

import json

from ..clock import Clock
from ..engine.determinism import is_nondeterminism
from ..engine.engine import Engine
from ..taskhub.model import InstanceQuery, RuntimeStatus

MAX_DEPTH = 3  # sub-orchestrations followed down to say what the innermost waits on


async def waits_of(engine: Engine, clock: Clock, instance_id: str, depth: int = 0) -> str:
    """ ": waiting on the retry timer due in 1 s: call advance()", or what else it waits on."""
    record = await engine.get_record(instance_id)
    if record is not None and record.runtime_status == RuntimeStatus.Suspended:
        return ": it is suspended: resume it (client.resume)"
    view = await engine.waiting_on(instance_id)
    if view is None:
        return ""
    now = clock.now()
    parts = [
        f"the {'retry timer' if task in view.retry_timers else 'timer'} due in "
        f"{_duration((due - now).total_seconds())}: call advance()"
        for task, due in view.timers
    ]
    parts += [f"the external event '{name}': call raise_event()" for name in view.events]
    parts += [f"activity '{name}' (task {task})" for task, name in view.activities]
    for _task, name, child in view.suborchestrations:
        inner = await waits_of(engine, clock, child, depth + 1) if depth < MAX_DEPTH else ""
        parts.append(f"sub-orchestration '{name}' ({child}){inner.replace(': ', ', ', 1)}")
    parts += [f"entity {entity} to answer '{op}'" for entity, op in view.entities]
    return f": waiting on {'; '.join(parts)}" if parts else ": waiting on nothing"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{max(seconds, 0):.3g} s"


async def diverged_instances(engine: Engine) -> list[str]:
    """The orchestrations that failed as non-deterministic, each as `ID (NAME): error`."""
    query = InstanceQuery(runtime_status={RuntimeStatus.Failed}, orchestrations_only=True)
    found: list[str] = []
    token: str | None = None
    while True:
        records, token = await engine.query(query, None, token)
        found += [
            f"{r.instance_id} ({r.name}): {json.loads(r.output)}"
            for r in records
            if r.output and is_nondeterminism(r.output)
        ]
        if token is None:
            return found
