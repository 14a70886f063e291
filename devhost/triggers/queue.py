"""Queue triggers: messages of a storage queue, handled as the Functions host handles them.

A listener receives up to `batchSize` messages at a time, hidden from others while the function
runs. Success deletes the message. A failure makes it visible again after `visibilityTimeout`;
once it has been tried `maxDequeueCount` times (5) it moves to `<queue>-poison`, so a message
that always fails never blocks the ones behind it. An empty queue is polled with exponential
back-off up to `maxPollingInterval`, as the host polls; a message written by this host's own
output binding wakes the listener at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from azure.functions import meta
from azure.storage.queue import QueueMessage

from ..app.app_index import FunctionInfo
from ..app.binding_expressions import expand_settings, json_properties
from ..app.queue_options import QueueOptions
from ..app.storage_account import StorageAccount

log = logging.getLogger("devhost.queue")

MIN_POLLING_INTERVAL = 0.1  # seconds: the host's first back-off step
PROCESSING_VISIBILITY = 600  # seconds a message stays hidden while its function runs

Invoke = Callable[[FunctionInfo, Any, dict[str, Any]], Awaitable[Any]]
RunBlocking = Callable[..., Awaitable[Any]]


def queue_name_of(info: FunctionInfo) -> str:
    return expand_settings(str(info.trigger.get("queueName", ""))).lower()


class QueueListener:
    """Feeds one queue's messages to one function."""

    def __init__(
        self,
        info: FunctionInfo,
        account: StorageAccount,
        options: QueueOptions,
        invoke: Invoke,
        run_blocking: RunBlocking,
    ) -> None:
        self.info = info
        self.account = account
        self.options = options
        self.invoke = invoke
        self.run_blocking = run_blocking
        self.queue_name = queue_name_of(info)
        self.queue = account.queues.get_queue_client(self.queue_name)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look now (on the loop): a message was just written to this queue."""
        self._wake.set()

    async def run(self) -> None:
        await self.run_blocking(self.account.ensure, "queue", self.queue_name)
        delay = MIN_POLLING_INTERVAL
        while True:
            self._wake.clear()
            try:
                messages = await self.run_blocking(self._receive)
            except Exception:  # noqa: BLE001 - storage down: keep polling, with back-off
                log.warning("Queue '%s': receive failed; retrying", self.queue_name, exc_info=True)
                messages = []
            if messages:
                await asyncio.gather(*(self._settle(m) for m in messages))
                delay = MIN_POLLING_INTERVAL
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, self.options.max_polling_interval.total_seconds())

    def _receive(self) -> list[QueueMessage]:
        pages = self.queue.receive_messages(
            messages_per_page=self.options.batch_size, visibility_timeout=PROCESSING_VISIBILITY
        )
        return list(next(iter(pages.by_page()), []))

    async def _settle(self, message: QueueMessage) -> None:
        """Handle one message; a storage failure while settling it leaves it to come back."""
        try:
            await self._handle(message)
        except Exception:  # noqa: BLE001 - the message reappears after its visibility timeout
            log.warning(
                "Queue '%s': message %s not settled", self.queue_name, message.id, exc_info=True
            )

    async def _handle(self, message: QueueMessage) -> None:
        if message.dequeue_count > self.options.max_dequeue_count:
            await self.run_blocking(self._to_poison, message)
            return
        try:
            body = self._body(message)
            await self.invoke(self.info, self._trigger_value(message, body), _data(message, body))
        except Exception:
            log.exception(
                "Function '%s' failed on message %s (try %d of %d)",
                self.info.name,
                message.id,
                message.dequeue_count,
                self.options.max_dequeue_count,
            )
            if message.dequeue_count >= self.options.max_dequeue_count:
                await self.run_blocking(self._to_poison, message)
            else:
                await self.run_blocking(
                    self.queue.update_message,
                    message,
                    visibility_timeout=int(self.options.visibility_timeout.total_seconds()),
                )
            return
        await self.run_blocking(self.queue.delete_message, message)

    def _body(self, message: QueueMessage) -> str:
        if not self.options.base64:
            return message.content
        try:
            return base64.b64decode(message.content, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError(
                f"message {message.id} is not base64; set extensions.queues.messageEncoding "
                "to 'none' in host.json for plain-text messages"
            ) from None

    def _trigger_value(self, message: QueueMessage, body: str) -> Any:
        annotation = self.info.annotations.get(self.info.trigger_param)
        data_type = str(self.info.trigger.get("dataType", "")).lower()
        if annotation is bytes or data_type == "binary":
            return body.encode("utf-8")
        if annotation is str or data_type == "string":
            return body
        converter = meta.get_binding_registry().get("queueTrigger")
        return converter.decode(meta.Datum(body, "string"), trigger_metadata=_metadata(message))

    def _to_poison(self, message: QueueMessage) -> None:
        """Copy to `<queue>-poison` and delete, as the host does after the last failed try."""
        poison = f"{self.queue_name}-poison"
        self.account.ensure("queue", poison)
        self.account.queues.get_queue_client(poison).send_message(message.content)
        self.queue.delete_message(message)
        log.warning(
            "Message %s of queue '%s' moved to '%s' after %d tries",
            message.id,
            self.queue_name,
            poison,
            message.dequeue_count,
        )


def _metadata(message: QueueMessage) -> dict[str, meta.Datum]:
    """Trigger metadata as the host sends it to the worker."""

    def when(value: Any) -> meta.Datum:
        return meta.Datum(value.isoformat() if value else None, "string" if value else None)

    return {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(message.dequeue_count, "int"),
        "ExpirationTime": when(message.expires_on),
        "InsertionTime": when(message.inserted_on),
        "NextVisibleTime": when(message.next_visible_on),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }


def _data(message: QueueMessage, body: str) -> dict[str, Any]:
    """Binding data: `{queueTrigger}`, the metadata, and a JSON body's properties."""
    return {
        **json_properties(body),
        "QueueTrigger": body,
        "Id": message.id,
        "DequeueCount": message.dequeue_count,
        "PopReceipt": message.pop_receipt,
    }
