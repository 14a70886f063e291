"""Narration: each line goes to the `console` queue (read once, by the console monitor) and
to the user's Log (read again, by GameLog)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

from .clients import client_options, per_loop
from .repository import GameRepository

QUEUE = "console"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Narrator:
    def __init__(self, connection: str) -> None:
        self.queue = QueueClient.from_connection_string(
            connection, QUEUE, **client_options(connection)
        )
        self.repository = GameRepository.shared(connection)
        self._ready = False
        self._creating = asyncio.Lock()

    @classmethod
    def shared(cls, connection: str) -> Narrator:
        return per_loop(cls, connection)

    async def say(
        self, user: str, text: str, at: str | None = None, key: str | None = None
    ) -> None:
        """`at` and `key` make a line idempotent: a repeated activity writes the same Log row."""
        at = at or now_text()
        key = key or uuid.uuid4().hex
        if not self._ready:
            async with self._creating:
                if not self._ready:
                    with contextlib.suppress(ResourceExistsError):
                        await self.queue.create_queue()
                    self._ready = True
        message = json.dumps({"time": at, "user": user, "text": text})
        await asyncio.gather(
            self.queue.send_message(message), self.repository.append_log(user, at, key, text)
        )
