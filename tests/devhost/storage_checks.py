"""What tests of triggers and bindings need: a storage account's names, writes and waits, and
the start-up listing of an app."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.clock import Clock
from devhost.host import DevHost
from devhost.settings import load_settings
from devhost.store.memory import MemoryStore

T = TypeVar("T")


def listing(app_dir: Path) -> str:
    """What `python -m devhost start` prints about the app's functions (nothing is started)."""
    return "\n".join(DevHost(load_settings(app_dir), MemoryStore(), Clock()).describe())


def eventually(check: Callable[[], T | None], timeout: float = 20, what: str = "") -> T:
    """The first truthy result of `check`, or a failure naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


class Account:
    """One storage account (Azurite), with names of its own for each test."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.suffix = uuid.uuid4().hex[:10]
        self.blobs = BlobServiceClient.from_connection_string(connection)
        self.queues = QueueServiceClient.from_connection_string(connection)
        self.tables = TableServiceClient.from_connection_string(connection)

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}"

    def table_name(self, base: str) -> str:
        return f"{base}{self.suffix}"

    def send(self, queue: str, text: str) -> None:
        """A message as the host's default (base64) encoding expects it."""
        client = self.queues.get_queue_client(queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(base64.b64encode(text.encode()).decode())

    def messages(self, queue: str) -> list[str]:
        """The queue's messages, decoded, without taking them off the queue."""
        try:
            peeked = self.queues.get_queue_client(queue).peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [base64.b64decode(m.content).decode() for m in peeked]

    def upload(self, container: str, name: str, content: bytes) -> None:
        client = self.blobs.get_container_client(container)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        client.upload_blob(name, content, overwrite=True)

    def blob(self, container: str, name: str) -> bytes | None:
        try:
            return self.blobs.get_blob_client(container, name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def entity(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        try:
            return dict(self.tables.get_table_client(table).get_entity(partition, row))
        except ResourceNotFoundError:
            return None
