"""The task hub in Azure Storage tables (Azurite locally, or a real account).

Layout, for a hub named H (readable in Storage Explorer):
- `HHistory`: one partition per instance (PartitionKey = instance id) holding
  - `state`: the instance's authoritative status row, with `Next`, the number of history
    events of the current execution;
  - `h00000000`, `h00000001`, ...: one row per history event (`Event` holds the JSON);
  - `i<time>-<message id>`: the stored inbox (starts, raised events, control messages).
- `HInstances`: the listing queries read, one row per instance in one partition
  (PartitionKey "listing", RowKey = instance id), written behind the commits (`azure_listing`).

Every change is one entity-group transaction on the instance's partition. A start inserts the
`state` row with the start message, without reading first: only when the insert finds a row
does it read, to refuse a live instance or replace a finished one. An episode writes its new
event rows, deletes the inbox rows they consumed, and updates `state` under its ETag. An episode
with more than fits in one transaction writes its event rows first (rows past `Next` are
invisible until `state` moves) and commits with the `state` update, so a reader never sees half
an episode. Point reads of an instance's status read `state`; recovery scans the `state` rows,
so it finds every stored start whatever the listing holds, and brings the listing up to date.

Beside this module: `azure_retry` (waiting out outages), `azure_lease` (one host per hub),
`azure_queries` (reading the listing), `azure_listing` (writing it), `azure_rows` (row layout).
Longer than 400 lines because the writes and the reads of an instance's partition share what
the store remembers of it between commits (the state row's ETag, its `Next`, the inbox rows'
keys): the transaction rules above are kept in one class that owns that memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..azurite import client_options, is_emulator
from ..taskhub.model import (
    EpisodeCommit,
    InstanceQuery,
    InstanceRecord,
    Message,
    same_parent_task,
)
from ..taskhub.ordering import InstanceOrder
from ..taskhub.rules import has_invalid_character
from .azure_lease import HubInUseError, HubLease, LeaseHolder, lease_holder
from .azure_listing import BATCH_BYTES, BATCH_ROWS, LISTING_PARTITION, InstanceListing, batches
from .azure_listing import row_size as _size
from .azure_purge import STATE_KEY, PurgeRows
from .azure_queries import ListingQueries, Summary, summaries
from .azure_retry import Retrying
from .azure_rows import (
    current_events,
    event_entity,
    message_entity,
    message_from,
    record_entity,
    record_from,
)
from .base import InstanceExistsError, StorageRequestError, TaskHubStore
from .large_values import BLOB_SUFFIX, LargeValues, PendingBlob
from .table_batch import Account, BatchRejectedError, TableBatchClient

__all__ = ["AzureStore", "CommitConflictError", "HubInUseError"]

log = logging.getLogger("devhost.store")

LIVE = ("Pending", "Running", "Suspended", "ContinuedAsNew")
CLOSE_SECONDS = 10  # how long a closing store waits to write the listing


class CommitConflictError(Exception):
    """The state row changed under us: another process wrote this instance."""


def _checked_key(key: str) -> str:
    """Table storage refuses these characters in keys (Azurite answers some with a 500, which
    would look like an outage and be retried forever): refuse them here, at once."""
    if not key or has_invalid_character(key):
        raise StorageRequestError(
            400,
            f"Table storage cannot hold the key {key[:80]!r} (/, \\, #, ? and control "
            "characters are not allowed)",
        )
    return key


class _State:
    """What the store remembers of an instance's `state` row between commits."""

    def __init__(self, etag: str | None, next_seq: int, execution_id: str) -> None:
        self.etag = etag
        self.next_seq = next_seq
        self.execution_id = execution_id


class AzureStore(TaskHubStore):
    def __init__(
        self, connection_string: str, hub: str, owner: str | None = None, read_only: bool = False
    ) -> None:
        """`read_only` opens an existing hub to read it beside its host: no tables, no lease."""
        if not hub.isalnum() or not hub[0].isalpha() or not 3 <= len(hub) <= 45:
            raise ValueError(
                f"Task hub name {hub!r} must be 3 to 45 letters and digits, starting with a letter"
            )
        self.connection_string = connection_string
        self.hub = hub
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.read_only = read_only
        self._service: TableServiceClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._batch: TableBatchClient
        self._listing_batch: TableBatchClient
        self._instances: TableClient
        self._history: TableClient
        self._leases: TableClient
        self._states: dict[str, _State] = {}
        self._inbox_keys: dict[tuple[str, str], str] = {}  # (partition, message id) -> row key
        self._lease: HubLease | None = None
        self._queries: ListingQueries
        self._purge: PurgeRows
        self.listing = InstanceListing(self._submit_listing)
        self._sequence = 0
        self._retry = Retrying(lambda: self.endpoint, self._report_unreachable)
        # Told once when an outage begins (the endpoint and the error), so the layer above can
        # say what to do about it; the store itself only retries.
        self.on_unreachable: Callable[[str, BaseException], None] | None = None
        # Told when another host took the hub: the layer above decides to stop.
        self.on_lease_lost: Callable[[str], None] | None = None
        # The host's address, kept in the lease row for the CLI (see commands/running_hosts).
        self.address: str | None = None

    # -- connection and the lease --------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._service.url if self._service else "storage"

    @property
    def round_trips(self) -> int:
        """Storage calls made, for benchmarks."""
        return self._retry.round_trips

    def _report_unreachable(self, endpoint: str, err: BaseException) -> None:
        if self.on_unreachable is not None:
            self.on_unreachable(endpoint, err)

    def _report_lease_lost(self, reason: str) -> None:
        if self.on_lease_lost is not None:
            self.on_lease_lost(reason)

    async def open(self) -> None:
        self._service = TableServiceClient.from_connection_string(
            self.connection_string, retry_total=0, **client_options(self.connection_string)
        )
        tables = {}
        for suffix in ("Instances", "History", "Leases"):
            name = f"{self.hub}{suffix}"
            if not self.read_only:
                await self._retry(lambda name=name: self._service.create_table_if_not_exists(name))
            tables[suffix] = self._service.get_table_client(name)
        self._instances = tables["Instances"]
        self._history = tables["History"]
        self._leases = tables["Leases"]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        account = Account.from_connection_string(self.connection_string)
        self._batch = TableBatchClient(account, f"{self.hub}History", self._session)
        self._listing_batch = TableBatchClient(account, f"{self.hub}Instances", self._session)
        self._large = LargeValues(self.connection_string, self.hub)
        writes = (self._submit, self._submit_listing)
        self._purge = PurgeRows(self._history, self._instances, *writes, self._retry, self._large)
        self._queries = ListingQueries(
            self._instances,
            self._retry,
            self.listing,
            self._inflate,
            self.get_instance,
            self.read_only,
        )
        if self.read_only:
            return
        self._lease = HubLease(
            self._leases, self.hub, self.owner, self._retry, self._report_lease_lost, self.address
        )
        try:
            await self._lease.acquire()
        except BaseException:  # refused, or interrupted: let go of the clients opened above
            await self.close()
            raise
        self._lease.keep()
        self.listing.start()

    async def lease_holder(self) -> LeaseHolder | None:
        """Who holds the hub's lease, read beside its holder (a read-only store too)."""
        return await lease_holder(self._leases, self.hub, self._retry)

    async def close(self) -> None:
        await self.listing.close(CLOSE_SECONDS)
        if self._lease is not None:
            await self._lease.release()
        if self._service:
            await self._service.close()
        if self._session:
            await self._session.close()
            await self._large.close()

    # -- writes --------------------------------------------------------------------------------

    async def _offload(self, entities: list[dict[str, Any]]) -> None:
        for entity in entities:
            if any(isinstance(v, PendingBlob) for v in entity.values()):
                await self._retry(lambda entity=entity: self._large.offload(entity))

    async def _upsert(self, table: TableClient, entity: dict[str, Any]) -> None:
        await self._offload([entity])
        await self._retry(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    async def _submit(self, operations: list) -> list[str | None]:
        """One entity-group transaction, its large values uploaded first."""
        await self._offload([op[1] for op in operations])
        return await self._retry(lambda: self._batch.submit(operations))

    async def _submit_listing(self, operations: list) -> list[str | None]:
        return await self._retry(lambda: self._listing_batch.submit(operations))

    def _inbox_row(self, message: Message) -> dict[str, Any]:
        """A new inbox row; its key is remembered (for the commit that consumes it) only once
        the row is written, so a start refused as a repeat keeps the key of the stored one."""
        self._sequence += 1
        key = f"i{time.time_ns():020d}{self._sequence % 1000:03d}-{message.message_id}"
        return message_entity(message, key)

    def _remember_inbox(self, row: dict[str, Any]) -> None:
        self._inbox_keys[row["PartitionKey"], row["MessageId"]] = row["RowKey"]

    async def create_instance(self, record: InstanceRecord, start: Message) -> None:
        if await self._insert_new(record, start):
            return
        existing = await self._read_state(record.instance_id)
        if existing is not None and not existing[0].runtime_status.is_terminal:
            raise InstanceExistsError(record.instance_id)
        await self._replace(record, start, existing)

    async def create_child(self, record: InstanceRecord, start: Message) -> InstanceRecord | None:
        if await self._insert_new(record, start):
            return None
        existing = await self._read_state(record.instance_id)
        if existing is not None and (
            same_parent_task(existing[0], record) or not existing[0].runtime_status.is_terminal
        ):
            return existing[0]
        await self._replace(record, start, existing)
        return None

    async def _insert_new(self, record: InstanceRecord, start: Message | None) -> bool:
        """A new instance's state row (and start message) in one transaction, reading nothing
        first; False if a state row was there already (and nothing was written)."""
        state = record_entity(record, STATE_KEY)
        state["Next"] = 0
        operations = [("insert", state, None)]
        if start is not None:
            operations.append(("upsert", self._inbox_row(start), None))
        try:
            result = await self._submit(operations)
        except BatchRejectedError:
            return False
        if start is not None:
            self._remember_inbox(operations[1][1])
        self._states[record.instance_id] = _State(result[0], 0, record.execution_id)
        self.listing.mark(state)
        return True

    async def _replace(
        self,
        record: InstanceRecord,
        start: Message,
        existing: tuple[InstanceRecord, str, int] | None,
    ) -> None:
        """Start again over a finished instance: its old rows go, then state and start are
        written in one transaction under the old state's ETag (a racing start loses)."""
        if existing is not None:
            await self._purge.partition(record.instance_id, keep=STATE_KEY)
        state = record_entity(record, STATE_KEY)
        state["Next"] = 0
        state_op = ("insert", state, None) if existing is None else ("update", state, existing[1])
        operations = [state_op, ("upsert", self._inbox_row(start), None)]
        try:
            result = await self._submit(operations)
        except BatchRejectedError as err:
            raise InstanceExistsError(record.instance_id) from err  # a racing start won
        self._remember_inbox(operations[1][1])
        self._states[record.instance_id] = _State(result[0], 0, record.execution_id)
        self.listing.mark(state)

    async def ensure_entity(self, record: InstanceRecord) -> None:
        if not await self._insert_new(record, None):
            self._states.pop(record.instance_id, None)  # it exists; read on commit

    async def send(self, messages: list[Message]) -> None:
        """Inbox rows, written at once; their keys, made here in order, keep the order."""
        for message in messages:
            _checked_key(message.instance_id)
        entities = [self._inbox_row(m) for m in messages]
        await asyncio.gather(*(self._upsert(self._history, entity) for entity in entities))
        for entity in entities:
            self._remember_inbox(entity)

    async def commit(self, commit: EpisodeCommit) -> None:
        record = commit.record
        instance_id = record.instance_id
        state = self._states.get(instance_id)
        if state is None:
            loaded = await self._read_state(instance_id)
            state = (
                _State(loaded[1], loaded[2], record.execution_id)
                if loaded
                else _State(None, 0, record.execution_id)
            )
        first = 0 if commit.new_execution else state.next_seq
        rows = [
            ("upsert", event_entity(instance_id, record.execution_id, first + i, evt), None)
            for i, evt in enumerate(commit.new_events)
        ]
        deletes = [
            ("delete", {"PartitionKey": instance_id, "RowKey": self._inbox_keys.pop(key)}, None)
            for key in ((instance_id, mid) for mid in commit.consumed)
            if key in self._inbox_keys
        ]
        state_entity = record_entity(record, STATE_KEY)
        state_entity["Next"] = first + len(commit.new_events)
        state_op = (
            ("update", state_entity, state.etag) if state.etag else ("insert", state_entity, None)
        )
        final = [state_op]
        final_size = _size(state_entity)
        pending = rows + deletes
        while (
            pending and len(final) < BATCH_ROWS and final_size + _size(pending[-1][1]) < BATCH_BYTES
        ):
            final_size += _size(pending[-1][1])
            final.append(pending.pop())
        early_rows = [op for op in pending if op[0] == "upsert"]
        late_deletes = [op for op in pending if op[0] == "delete"]
        for batch in batches(early_rows):
            await self._submit(batch)
        try:
            result = await self._submit(final)
        except BatchRejectedError as err:
            raise CommitConflictError(
                f"instance '{instance_id}' was changed by another writer"
            ) from err
        self._states[instance_id] = _State(result[0], state_entity["Next"], record.execution_id)
        for batch in batches(late_deletes):
            await self._submit(batch)
        if commit.status_changed or record.runtime_status.is_terminal:
            self.listing.mark(state_entity)
        if record.runtime_status.is_terminal:
            self._states.pop(instance_id, None)

    async def replace_history(self, record: InstanceRecord, history: list[dict[str, Any]]) -> None:
        loaded = await self._read_state(record.instance_id)
        self._states[record.instance_id] = _State(
            loaded[1] if loaded else None, 0, record.execution_id
        )
        await self.commit(EpisodeCommit(record, history, [], new_execution=True))

    # -- reads ---------------------------------------------------------------------------------

    async def _read_state(self, instance_id: str) -> tuple[InstanceRecord, str, int] | None:
        """The state row: the record, its ETag and the count of current history events."""
        entity = await self._read_state_row(instance_id)
        if entity is None:
            return None
        await self._inflate(entity)
        return record_from(entity), entity.metadata["etag"], int(entity.get("Next", 0))

    async def _read_state_row(self, instance_id: str) -> dict[str, Any] | None:
        """The state row as stored (large values still in their blobs)."""
        _checked_key(instance_id)
        try:
            return await self._retry(lambda: self._history.get_entity(instance_id, STATE_KEY))
        except ResourceNotFoundError:
            return None

    async def _partition(self, instance_id: str) -> list[dict[str, Any]]:
        _checked_key(instance_id)

        async def read() -> list[dict[str, Any]]:
            rows = []
            async for entity in self._history.query_entities(
                "PartitionKey eq @pk", parameters={"pk": instance_id}
            ):
                rows.append(entity)
            return rows

        rows = await self._retry(read)
        for row in rows:
            await self._inflate(row)
        return rows

    async def _inflate(self, entity: dict[str, Any]) -> None:
        """Read back the blobs a row points at (see large_values)."""
        if any(key.endswith(BLOB_SUFFIX) for key in entity):
            await self._retry(lambda: self._large.inflate(entity))

    async def load(
        self, instance_id: str
    ) -> tuple[InstanceRecord, list[dict[str, Any]], list[Message]] | None:
        rows = await self._partition(instance_id)
        state = next((r for r in rows if r["RowKey"] == STATE_KEY), None)
        if state is None:
            return None
        record = record_from(state)
        history = current_events(rows, state)
        inbox = []
        for row in rows:
            if row["RowKey"].startswith("i"):
                message = message_from(row)
                self._inbox_keys[instance_id, message.message_id] = row["RowKey"]
                inbox.append(message)
        self._states[instance_id] = _State(
            state.metadata["etag"], int(state.get("Next", 0)), record.execution_id
        )
        return record, history, inbox

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The authoritative status: the instance's state row (one point read)."""
        state = await self._read_state(instance_id)
        return state[0] if state is not None else None

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = await self._partition(instance_id)
        state = next((r for r in rows if r["RowKey"] == STATE_KEY), None)
        return current_events(rows, state) if state is not None else []

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        return await self._queries.query(query, top, continuation)

    async def summaries(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        if self.read_only:  # the host writes the hub: only it keeps the summaries in memory
            return await super().summaries(query, order, top, token)
        return await self._queries.sorted_page(query, order, top, token)

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        return await self._queries.count_by_status(query)

    async def purge(self, instance_ids: list[str], finished_only: bool = False) -> int:
        """Many instances at once, in few round trips (see azure_purge)."""
        for instance_id in instance_ids:
            _checked_key(instance_id)
            self.listing.forget(instance_id)
        await self.listing.settled()  # a row in flight must not come back after its delete
        deleted, gone = await self._purge.instances(instance_ids, finished_only, LIVE)
        for instance_id in gone:
            self._states.pop(instance_id, None)
        return deleted

    async def delete_hub(self) -> None:
        """Every row and large-value blob of the hub, entities included: the emulator's tables
        are dropped and created again, an Azure account's rows deleted (see azure_purge)."""
        self.listing.forget_all()
        await self.listing.settled()
        if is_emulator(self.connection_string):
            await self._purge.recreate_tables(self._service)
        else:
            await self._purge.everything()
        self._states.clear()
        self._inbox_keys.clear()

    async def active_instances(self) -> list[str]:
        """The live instances, from their state rows (a reader beside a host finds them there
        too). The host brings the listing up to date on the way: a crash may have left it
        behind, or holding a row of a purge it interrupted."""
        states = await summaries(
            self._history, self._retry, "RowKey eq @k", STATE_KEY, "PartitionKey"
        )
        if not self.read_only:
            await self._reconcile(states)
        return sorted(i for i, summary in states.items() if summary.status in LIVE)

    async def _reconcile(self, states: dict[str, Summary]) -> None:
        listed = await summaries(
            self._instances, self._retry, "PartitionKey eq @k", LISTING_PARTITION, "RowKey"
        )
        for instance_id, summary in states.items():
            if listed.get(instance_id) != summary:
                loaded = await self._read_state_row(instance_id)
                if loaded is not None:
                    self.listing.mark(loaded)
        stale = sorted(listed.keys() - states.keys())
        if stale:  # a purge was interrupted: what it left of those partitions goes first
            await self._purge.leftovers(stale)
