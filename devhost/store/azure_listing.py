"""The `Instances` table of the Azure task hub: a listing of every instance, written behind.

An instance's authoritative status is the `state` row in its History partition, which a start
or an episode writes in one transaction with the rest of its change. The listing is what
queries read (the list API, counts, the dashboard, the durable CLI): one row per instance, all
in one partition (PartitionKey "listing", RowKey = instance id), so that its rows can share a
transaction. A commit only marks an instance's new row here; one writer sends the latest row of
every marked instance, up to 100 in a transaction, off the commit's path, gathering the marks of
GATHER_SECONDS first (group commit). So a burst of status changes costs a few transactions, and
an instance that starts, runs and completes meanwhile is written once.

This process reads its own writes: a query first waits until the rows marked before it are
written, and its wait cuts the gathering short. A crash can leave the listing behind the state
rows; the next host to open the hub reconciles the two before it resumes anything
(`AzureStore.active_instances`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .azure_summaries import SummaryIndex
from .base import (
    StorageRequestError,
    StorageUnavailableError,
    clear_deadline,
    current_deadline,
)
from .table_batch import Operation

log = logging.getLogger("devhost.store")

LISTING_PARTITION = "listing"
BATCH_ROWS = 100
BATCH_BYTES = 3_500_000
GATHER_SECONDS = 0.05  # how long the writer collects marks before it writes them

Submit = Callable[[list[Operation]], Awaitable[Any]]


def listing_row(state_row: dict[str, Any]) -> dict[str, Any]:
    """The listing's row of an instance, from its (uploaded) state row."""
    row = {k: v for k, v in state_row.items() if k not in ("PartitionKey", "RowKey", "Next")}
    row["PartitionKey"] = LISTING_PARTITION
    row["RowKey"] = state_row["PartitionKey"]
    return row


def row_size(entity: dict[str, Any]) -> int:
    return sum(len(v) if isinstance(v, str) else 16 for v in entity.values())


def batches(operations: list[Operation]) -> list[list[Operation]]:
    """Operations cut into transactions of at most BATCH_ROWS rows and BATCH_BYTES."""
    result: list[list[Operation]] = []
    current: list[Operation] = []
    size = 0
    for operation in operations:
        entity_size = row_size(operation[1])
        if current and (len(current) >= BATCH_ROWS or size + entity_size > BATCH_BYTES):
            result.append(current)
            current, size = [], 0
        current.append(operation)
        size += entity_size
    if current:
        result.append(current)
    return result


class InstanceListing:
    """Rows waiting for the listing, and the one task that writes them."""

    def __init__(self, submit: Submit) -> None:
        """`submit` sends one transaction on the Instances table (with the store's retries)."""
        self._submit = submit
        self._waiting: dict[str, dict[str, Any]] = {}
        self._marked = 0  # marks made so far
        self._written = 0  # marks whose rows are written (or refused for good)
        self._wakeup = asyncio.Event()
        self._hurry = asyncio.Event()  # someone waits for the listing: write without gathering
        self._progress = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.summaries = SummaryIndex()  # what the rows say, for lists sorted in memory

    def start(self) -> None:
        """The writer waits out outages: whatever deadline the opener had is not its own."""
        context = contextvars.copy_context()
        context.run(clear_deadline)
        self._task = asyncio.create_task(self._write_forever(), context=context)

    async def close(self, timeout: float) -> None:
        """Write what is waiting (for at most `timeout` seconds), then stop the writer."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError, StorageUnavailableError):
            await asyncio.wait_for(self.settled(), timeout)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def mark(self, state_row: dict[str, Any]) -> None:
        """The instance's listing row is to become this state row's (no I/O)."""
        row = listing_row(state_row)
        self._waiting[row["RowKey"]] = row
        self.summaries.note(row)
        self._marked += 1
        self._wakeup.set()

    def forget(self, instance_id: str) -> None:
        """Drop a row not yet written (its instance is being purged)."""
        self._waiting.pop(instance_id, None)
        self.summaries.drop(instance_id)

    def forget_all(self) -> None:
        """Drop every row not yet written (the whole hub is being deleted)."""
        self._waiting.clear()
        self.summaries.clear()

    async def settled(self) -> None:
        """Until every row marked before this call is written; StorageUnavailableError past the
        caller's deadline (storage is away, and the writer waits it out)."""
        target = self._marked
        while self._written < target:
            self._hurry.set()
            progress = self._progress
            deadline = current_deadline()
            if deadline is None:
                await progress.wait()
                continue
            try:
                await asyncio.wait_for(progress.wait(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise StorageUnavailableError(
                    "Storage is unreachable (the instance listing could not be written)"
                ) from None

    async def _write_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), GATHER_SECONDS)
            self._wakeup.clear()
            self._hurry.clear()
            rows, self._waiting = self._waiting, {}
            upto = self._marked
            operations: list[Operation] = [("upsert", row, None) for row in rows.values()]
            await asyncio.gather(*(self._write(batch) for batch in batches(operations)))
            self._written = upto
            self._progress.set()
            self._progress = asyncio.Event()

    async def _write(self, batch: list[Operation]) -> None:
        try:
            await self._submit(batch)
        except StorageRequestError as err:
            if len(batch) == 1:  # refused for good; the state row stays right
                log.error("The listing row of '%s' was refused: %s", batch[0][1]["RowKey"], err)
                return
            for operation in batch:  # one bad row must not keep the others out
                await self._write([operation])
        except Exception:  # a writer that died would leave every query waiting
            log.exception("The listing could not be written; the next start reconciles it")
