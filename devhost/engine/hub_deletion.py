"""delete-task-hub through a running host waits until the work under way is done, since an
entity batch commits before its rows go. Some work never ends by itself: an entity operation
that waits for a gRPC worker registering its name, when no such worker is connected. A delete
that waited for it would never answer, so once the work has not ended within IDLE_GRACE, the
entities' work the runner says waits for a worker is named, and the delete is refused (409)."""

from __future__ import annotations

import asyncio
import contextlib

from ..store.base import TaskHubStore
from ..taskhub.errors import EngineError
from ..taskhub.model import InstanceQuery
from .background import Background
from .user_code import UserCode

IDLE_GRACE = 1.0  # seconds: work a connected worker takes ends well within it
ENTITIES = InstanceQuery(instance_id_prefix="@")  # an entity's instance id is @name@key
PAGE = 1000


async def idle_or_refused(background: Background, store: TaskHubStore, runner: UserCode) -> None:
    """Until the engine is idle; a 409 naming what waits for a worker that is not there."""
    idle = asyncio.ensure_future(background.wait_idle())
    try:
        while not (await asyncio.wait({idle}, timeout=IDLE_GRACE))[0]:
            waiting = await _waiting_for_workers(store, runner)
            if waiting:
                entity_id, sentence = waiting[0]
                more = f" (and {len(waiting) - 1} more entities)" if len(waiting) > 1 else ""
                raise EngineError(
                    409,
                    f"The task hub is not deleted: entity '{entity_id}' {sentence}{more}. "
                    "Start that worker so the work ends, then delete the hub.",
                )
        idle.result()
    finally:
        if not idle.done():
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle


async def _waiting_for_workers(store: TaskHubStore, runner: UserCode) -> list[tuple[str, str]]:
    """The entities whose work the runner holds for a worker, with the runner's sentence."""
    waiting, token = [], None
    while True:
        page, token = await store.query(ENTITIES, PAGE, token)
        for record in page:
            sentence = runner.waiting_for(record.instance_id)
            if sentence:
                waiting.append((record.instance_id, sentence))
        if not token:
            return waiting
