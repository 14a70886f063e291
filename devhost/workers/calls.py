"""An invocation on its way to a worker, and what it answers when no worker could run it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..app.http_call import JSON, HttpAnswer
from ..app.invoke import ActivityOutcome
from ..engine.entities import OperationOutcome
from ..engine.replay import EpisodeCall, ReplayResult
from ..engine.user_code import ActivityDone
from ..engine.warm import WarmStats
from ..runner import EntityBatch
from ..taskhub.model import InstanceRecord


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
    watch: asyncio.TimerHandle | None = None  # its functionTimeout (workers/overtime.py)


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
