"""Storage accounts that bindings and triggers name by app setting (`connection`).

Blocking clients, opened once per connection string and shared: bindings run on the function
executor's threads beside the function, and trigger listeners hand their calls to it too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from functools import cached_property

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from ..azurite import expand_development_storage


class MissingConnectionError(Exception):
    """A binding names a connection whose app setting is not set."""


def connection_string(setting: str) -> str | None:
    """The value of a `connection` app setting, also under the `AzureWebJobs` prefix."""
    value = os.environ.get(setting) or os.environ.get(f"AzureWebJobs{setting}")
    return expand_development_storage(value) if value else None


class StorageAccount:
    """One account's blob, queue and table clients; containers and queues created on first use."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self._created: set[str] = set()
        self._lock = threading.Lock()

    @cached_property
    def blobs(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection)

    @cached_property
    def queues(self) -> QueueServiceClient:
        return QueueServiceClient.from_connection_string(self.connection)

    @cached_property
    def tables(self) -> TableServiceClient:
        return TableServiceClient.from_connection_string(self.connection)

    def close(self) -> None:
        """Close the clients that were opened."""
        for name in ("blobs", "queues", "tables"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                client.close()

    def ensure(self, kind: str, name: str) -> None:
        """Create a container, queue or table once, as the host does before writing to it."""
        key = f"{kind}/{name}"
        if key in self._created:
            return
        create = {
            "blob": lambda: self.blobs.create_container(name),
            "queue": lambda: self.queues.create_queue(name),
            "table": lambda: self.tables.create_table(name),
        }[kind]
        with contextlib.suppress(ResourceExistsError):
            create()
        with self._lock:
            self._created.add(key)


class StorageAccounts:
    """Accounts by app setting name, each opened once."""

    def __init__(self) -> None:
        self._accounts: dict[str, StorageAccount] = {}
        self._lock = threading.Lock()

    def has(self, setting: str) -> bool:
        return connection_string(setting) is not None

    def get(self, setting: str) -> StorageAccount:
        connection = connection_string(setting)
        if connection is None:
            raise MissingConnectionError(
                f"the app setting {setting!r} (the binding's connection) is not set"
            )
        with self._lock:
            account = self._accounts.get(connection)
            if account is None:
                account = self._accounts[connection] = StorageAccount(connection)
            return account

    def close(self) -> None:
        with self._lock:
            accounts, self._accounts = list(self._accounts.values()), {}
        for account in accounts:
            account.close()
