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
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ..azurite import client_options
from ..taskhub.model import (
    EpisodeCommit,
    InstanceQuery,
    InstanceRecord,
    Message,
    same_parent_task,
)
from ..taskhub.rules import has_invalid_character
from .azure_listing import BATCH_BYTES, BATCH_ROWS, LISTING_PARTITION, InstanceListing, batches
from .azure_listing import row_size as _size
from .azure_rows import (
    event_entity,
    get_text,
    message_entity,
    message_from,
    record_entity,
    record_from,
    utc,
)
from .base import (
    BAD_TOKEN,
    InstanceExistsError,
    StorageRequestError,
    StorageUnavailableError,
    TaskHubStore,
    current_deadline,
)
from .large_values import BLOB_SUFFIX, LargeValues, PendingBlob
from .table_batch import Account, BatchRejectedError, BatchServerError, TableBatchClient

log = logging.getLogger("devhost.store")
T = TypeVar("T")

STATE_KEY = "state"
LEASE_SECONDS = 30
MAX_RETRY_DELAY = 5.0
LIVE = ("Pending", "Running", "Suspended", "ContinuedAsNew")
SUMMARY = ["PartitionKey", "RowKey", "RuntimeStatus", "ExecutionId", "LastUpdatedTime"]
CLOSE_SECONDS = 10  # how long a closing store waits to write the listing


class HubInUseError(Exception):
    """Another host holds this task hub's lease."""


class CommitConflictError(Exception):
    """The state row changed under us: another process wrote this instance."""


TRANSIENT_STATUSES = frozenset({408, 429})
CONFLICT_STATUSES = frozenset({404, 409, 412})  # a transaction that lost a race
NOT_STORAGE_STATUSES = frozenset({501, 505})  # a server that does not speak the storage API


def _is_outage(err: BaseException) -> bool:
    """Worth retrying: the service was unreachable, timed out, throttled or failed (5xx)."""
    if isinstance(
        err,
        ServiceRequestError
        | ServiceResponseError
        | OSError
        | BatchServerError
        | aiohttp.ClientError
        | asyncio.TimeoutError,
    ):
        return True
    status = getattr(err, "status_code", None) or getattr(err, "status", None) or 0
    return (status >= 500 and status not in NOT_STORAGE_STATUSES) or status in TRANSIENT_STATUSES


def _refusal(err: BaseException) -> StorageRequestError | None:
    """A permanent 4xx answer as one sentence; None for anything else."""
    if isinstance(err, BatchRejectedError):
        status, detail = err.status, str(err)
    elif isinstance(err, HttpResponseError) and (
        400 <= (err.status_code or 0) < 500 or err.status_code in NOT_STORAGE_STATUSES
    ):
        status = err.status_code or 400
        detail = str(err.error_code or err.reason or err.message).split("\n")[0]
    else:
        return None
    if status in CONFLICT_STATUSES or status in TRANSIENT_STATUSES:
        return None  # the caller handles a lost race; throttling is retried
    answer = 413 if status == 413 or "EntityTooLarge" in detail else 400
    return StorageRequestError(
        answer, f"Azure Storage refused the request ({status}): {detail[:200]}"
    )


def _decode_token(continuation: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(continuation))
    except (ValueError, TypeError):
        raise StorageRequestError(400, BAD_TOKEN) from None


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


def _describe(err: BaseException) -> str:
    text = str(err).split("\n")[0][:120]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
        self._inbox_keys: dict[str, str] = {}
        self._lease_task: asyncio.Task | None = None
        self._lease_etag: str | None = None
        self.listing = InstanceListing(self._submit_listing)
        self._outage_logged = False
        self._sequence = 0
        self.round_trips = 0  # storage calls made, for benchmarks
        # Told once when an outage begins (the endpoint and the error), so the layer above can
        # say what to do about it; the store itself only retries.
        self.on_unreachable: Callable[[str, BaseException], None] | None = None
        # Told when another host took the hub: the layer above decides to stop.
        self.on_lease_lost: Callable[[str], None] | None = None

    # -- connection, retries and the lease ------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._service.url if self._service else "storage"

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a storage call, waiting out outages (Azurite stopped, network down).

        A permanent refusal (a 4xx such as InvalidInput) raises StorageRequestError at once;
        an outage is retried with backoff until the caller's deadline, if it set one.
        """
        delay = 0.2
        while True:
            try:
                self.round_trips += 1
                result = await operation()
            except (ResourceExistsError, ResourceNotFoundError):
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                refusal = _refusal(err)
                if refusal is not None:
                    raise refusal from err
                if not _is_outage(err):
                    raise
                deadline = current_deadline()
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise StorageUnavailableError(
                        f"Storage at {self.endpoint} is unreachable ({type(err).__name__})"
                    ) from err
                if not self._outage_logged and self.on_unreachable is not None:
                    self.on_unreachable(self.endpoint, err)
                if not self._outage_logged or delay >= MAX_RETRY_DELAY:
                    log.warning(
                        "Storage at %s is unreachable (%s); retrying every few seconds",
                        self.endpoint,
                        _describe(err),
                    )
                self._outage_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            if self._outage_logged:
                log.warning("Storage at %s is reachable again", self.endpoint)
                self._outage_logged = False
            return result

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
        if self.read_only:
            return
        try:
            await self._acquire_lease()
        except BaseException:  # refused, or interrupted: let go of the clients opened above
            await self.close()
            raise
        self._lease_task = asyncio.create_task(self._renew_lease())
        self.listing.start()

    async def close(self) -> None:
        await self.listing.close(CLOSE_SECONDS)
        if self._lease_task:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            await self._release_lease()
        if self._service:
            await self._service.close()
        if self._session:
            await self._session.close()
            await self._large.close()

    def _lease_entity(self) -> dict[str, Any]:
        expires = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)
        return {
            "PartitionKey": "lease",
            "RowKey": self.hub,
            "Owner": self.owner,
            "ExpiresAt": expires,
        }

    async def _acquire_lease(self) -> None:
        """One host per hub: take the lease, or refuse with who holds it."""
        try:
            result = await self._retry(lambda: self._leases.create_entity(self._lease_entity()))
            self._lease_etag = result.get("etag")
            return
        except ResourceExistsError:
            pass
        current = await self._retry(lambda: self._leases.get_entity("lease", self.hub))
        expires = utc(current["ExpiresAt"])
        holder = current["Owner"]
        if holder != self.owner and expires > datetime.now(UTC) and _holder_alive(holder):
            raise HubInUseError(
                f"task hub '{self.hub}' is in use by another host ({holder}) until "
                f"{expires:%H:%M:%S} UTC; stop it, or give this host another hubName"
            )
        result = await self._retry(
            lambda: self._leases.update_entity(
                self._lease_entity(),
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        )
        self._lease_etag = result.get("etag")

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                result = await self._retry(
                    lambda: self._leases.update_entity(
                        self._lease_entity(),
                        mode=UpdateMode.REPLACE,
                        etag=self._lease_etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
                self._lease_etag = result.get("etag")
            except (HttpResponseError, ResourceNotFoundError):
                try:  # the row changed or vanished (storage restored); take it again if free
                    await self._acquire_lease()
                except HubInUseError as err:
                    log.critical("Lost the lease: %s.", err)
                    if self.on_lease_lost is not None:
                        self.on_lease_lost(str(err))
                    return

    async def _release_lease(self) -> None:
        try:
            await asyncio.wait_for(
                self._leases.delete_entity(
                    "lease",
                    self.hub,
                    etag=self._lease_etag,
                    match_condition=MatchConditions.IfNotModified,
                ),
                timeout=2,
            )
        except Exception:  # noqa: BLE001 - best effort; the lease expires anyway
            log.debug("lease not released", exc_info=True)

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
        self._inbox_keys[row["MessageId"]] = row["RowKey"]

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
            await self._delete_partition(record.instance_id, keep_state=True)
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
            ("delete", {"PartitionKey": instance_id, "RowKey": self._inbox_keys.pop(mid)}, None)
            for mid in commit.consumed
            if mid in self._inbox_keys
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
        history = self._events(rows, state)
        inbox = []
        for row in rows:
            if row["RowKey"].startswith("i"):
                message = message_from(row)
                self._inbox_keys[message.message_id] = row["RowKey"]
                inbox.append(message)
        self._states[instance_id] = _State(
            state.metadata["etag"], int(state.get("Next", 0)), record.execution_id
        )
        return record, history, inbox

    @staticmethod
    def _events(rows: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
        count = int(state.get("Next", 0))
        events = [
            r
            for r in rows
            if r["RowKey"].startswith("h")
            and r.get("ExecutionId") == state["ExecutionId"]
            and int(r["RowKey"][1:]) < count
        ]
        events.sort(key=lambda r: r["RowKey"])
        return [json.loads(get_text(r, "Event") or "{}") for r in events]

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The authoritative status: the instance's state row (one point read)."""
        state = await self._read_state(instance_id)
        return state[0] if state is not None else None

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = await self._partition(instance_id)
        state = next((r for r in rows if r["RowKey"] == STATE_KEY), None)
        return self._events(rows, state) if state is not None else []

    def _where(self, query: InstanceQuery) -> tuple[str, dict[str, Any]]:
        """The Instances table filter of a query, with its parameters."""
        clauses, parameters = ["PartitionKey eq @pk"], {"pk": LISTING_PARTITION}
        if query.runtime_status:
            names = sorted(str(s) for s in query.runtime_status)
            terms = []
            for index, name in enumerate(names):
                parameters[f"s{index}"] = name
                terms.append(f"RuntimeStatus eq @s{index}")
            clauses.append("( " + " or ".join(terms) + " )")  # the SDK splits parameters on spaces
        if query.created_from:
            parameters["from"] = query.created_from
            clauses.append("CreatedTime ge @from")
        if query.created_to:
            parameters["to"] = query.created_to
            clauses.append("CreatedTime le @to")
        if query.instance_id_prefix:
            parameters["lo"] = query.instance_id_prefix
            parameters["hi"] = query.instance_id_prefix + "\uffff"
            clauses.append("RowKey ge @lo and RowKey lt @hi")
        if query.name:
            parameters["name"] = query.name
            clauses.append("Name eq @name")
        if query.orchestrations_only:  # entity ids, and only they, start with "@"
            parameters["at"], parameters["past"] = "@", "A"
            clauses.append("( RowKey lt @at or RowKey ge @past )")
        return " and ".join(clauses), parameters

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        where, parameters = self._where(query)
        token = _decode_token(continuation) if continuation else None
        await self.listing.settled()

        async def read() -> tuple[list[InstanceRecord], Any]:
            pages = self._instances.query_entities(
                where, parameters=parameters, results_per_page=top or 1000
            ).by_page(continuation_token=token)
            entities = []
            async for page in pages:
                async for entity in page:
                    entities.append(entity)
                break
            return entities, pages.continuation_token

        entities, next_token = await self._retry(read)
        records = []
        for entity in entities:
            await self._inflate(entity)
            records.append(record_from(entity, instance_id=entity["RowKey"]))
        if self.read_only:
            records = await self._as_stored(records, query)
        encoded = (
            base64.urlsafe_b64encode(json.dumps(next_token).encode()).decode()
            if next_token
            else None
        )
        return records, encoded

    async def _as_stored(
        self, records: list[InstanceRecord], query: InstanceQuery
    ) -> list[InstanceRecord]:
        """A reader beside a running host: the listing trails the host by a moment, so each
        live row is read again from its state row, and kept only if it still matches."""

        async def current(record: InstanceRecord) -> InstanceRecord | None:
            if record.runtime_status.is_terminal:
                return record
            stored = await self.get_instance(record.instance_id)
            return stored if stored is not None and query.matches(stored) else None

        checked = await asyncio.gather(*(current(r) for r in records))
        return [r for r in checked if r is not None]

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """Reads only the status column: 10,000 instances are ten small pages."""
        where, parameters = self._where(query)
        await self.listing.settled()

        async def read() -> Counter[str]:
            counts: Counter[str] = Counter()
            rows = self._instances.query_entities(
                where, parameters=parameters, select=["RuntimeStatus"], results_per_page=1000
            )
            async for row in rows:
                counts[row["RuntimeStatus"]] += 1
            return counts

        return dict(await self._retry(read))

    async def purge(self, instance_ids: list[str]) -> int:
        for instance_id in instance_ids:
            self.listing.forget(instance_id)
        await self.listing.settled()  # a row in flight must not come back after its delete
        deleted = 0
        for instance_id in instance_ids:
            try:
                await self._retry(
                    lambda iid=instance_id: self._instances.delete_entity(LISTING_PARTITION, iid)
                )
                deleted += 1
            except ResourceNotFoundError:
                pass
            await self._delete_partition(instance_id, keep_state=False)
            await self._retry(lambda iid=instance_id: self._large.delete_instance(iid))
            self._states.pop(instance_id, None)
        return deleted

    async def _delete_partition(self, instance_id: str, keep_state: bool) -> None:
        rows = await self._partition(instance_id)
        operations = [
            ("delete", {"PartitionKey": instance_id, "RowKey": r["RowKey"]}, None)
            for r in rows
            if not (keep_state and r["RowKey"] == STATE_KEY)
        ]
        for batch in batches(operations):
            await self._submit(batch)

    async def active_instances(self) -> list[str]:
        """The live instances, from their state rows (a reader beside a host finds them there
        too). The host brings the listing up to date on the way: a crash may have left it
        behind, or holding a row of a purge it interrupted."""
        states = await self._summaries(self._history, "RowKey eq @k", STATE_KEY, "PartitionKey")
        if not self.read_only:
            await self._reconcile(states)
        return sorted(i for i, summary in states.items() if summary[0] in LIVE)

    async def _reconcile(self, states: dict[str, tuple[str, str, str]]) -> None:
        listed = await self._summaries(
            self._instances, "PartitionKey eq @k", LISTING_PARTITION, "RowKey"
        )
        for instance_id, summary in states.items():
            if listed.get(instance_id) != summary:
                loaded = await self._read_state_row(instance_id)
                if loaded is not None:
                    self.listing.mark(loaded)
        stale = [
            ("delete", {"PartitionKey": LISTING_PARTITION, "RowKey": instance_id}, None)
            for instance_id in listed.keys() - states.keys()
        ]
        for batch in batches(stale):
            await self._submit_listing(batch)

    async def _summaries(
        self, table: TableClient, where: str, key: str, id_column: str
    ) -> dict[str, tuple[str, str, str]]:
        """Status, execution and last update of every instance a scan finds, by id."""

        async def read() -> dict[str, tuple[str, str, str]]:
            found = {}
            rows = table.query_entities(
                where, parameters={"k": key}, select=SUMMARY, results_per_page=1000
            )
            async for row in rows:
                found[row[id_column]] = (
                    row["RuntimeStatus"],
                    row["ExecutionId"],
                    utc(row["LastUpdatedTime"]).isoformat(),
                )
            return found

        return await self._retry(read)


def _holder_alive(holder: str) -> bool:
    """A lease held by a process of this machine that no longer exists can be taken at once."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
