"""Purging the Azure task hub at scale: thousands of instances in few round trips.

An instance's rows are one partition of the History table, and a transaction holds rows of one
partition only, so a purge costs at least a transaction per instance. Everything else is shared:
the rows are found a hundred instances a query (a key range over their sorted ids: a query per
partition would double the round trips), deleted in transactions of up to 100 rows,
PURGE_CONCURRENCY at a time (Azurite answers them in turn; more only wait in its queue), then
the listing's rows go 100 a transaction, and the large values' blobs are found with one listing
of their container. The state row's status, read with the keys, lets a purge of finished
instances leave alone one that turned out live, without a read of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from azure.data.tables.aio import TableClient

from .azure_listing import LISTING_PARTITION, batches
from .azure_queries import summaries
from .azure_retry import Retrying
from .bounded import bounded_gather
from .large_values import LargeValues
from .table_batch import BatchRejectedError, Operation

STATE_KEY = "state"  # the row holding an instance's status (see azure)
PURGE_CONCURRENCY = 16  # transactions under way at once: more only queue in Azurite
PURGE_GROUP = 100  # instances whose rows one query finds
Submit = Callable[[list[Operation]], Awaitable[list[str | None]]]
Rows = dict[str, list[dict[str, Any]]]


class PurgeRows:
    """Deletes instances' rows, their listing rows and their blobs, many at a time."""

    def __init__(
        self,
        history: TableClient,
        listing: TableClient,
        submit_history: Submit,
        submit_listing: Submit,
        retry: Retrying,
        large: LargeValues,
    ) -> None:
        self.history = history
        self.listing = listing
        self.submit_history = submit_history
        self.submit_listing = submit_listing
        self.retry = retry
        self.large = large

    async def instances(
        self, instance_ids: list[str], finished_only: bool, live: tuple[str, ...]
    ) -> tuple[int, list[str]]:
        """How many instances were deleted, and the ids now gone (all but those left alone:
        with `finished_only`, an instance whose state row's status is in `live`)."""
        ids = sorted(set(instance_ids))
        groups = [ids[i : i + PURGE_GROUP] for i in range(0, len(ids), PURGE_GROUP)]
        found: Rows = {}
        for rows in await bounded_gather(map(self._rows_of, groups), PURGE_CONCURRENCY):
            found.update(rows)
        states = {i: next((r for r in rows if r["RowKey"] == STATE_KEY), None)
                  for i, rows in found.items()}  # fmt: skip
        kept = {
            i
            for i, state in states.items()
            if finished_only and state is not None and state.get("RuntimeStatus") in live
        }
        await bounded_gather(
            (self._delete_rows(i, [r["RowKey"] for r in rows]) for i, rows in found.items()
             if i not in kept),
            PURGE_CONCURRENCY,
        )  # fmt: skip
        gone = [i for i in ids if i not in kept]
        await self._delete_listing_rows(gone)
        await self.retry(lambda: self.large.delete_instances(gone))
        deleted = sum(1 for i, state in states.items() if state is not None and i not in kept)
        return deleted, gone

    async def everything(self) -> None:
        """Every row of the History table and of the listing, and every large-value blob."""

        async def scan() -> Rows:
            partitions: Rows = {}
            rows = self.history.list_entities(
                select=["PartitionKey", "RowKey"], results_per_page=1000
            )
            async for row in rows:
                partitions.setdefault(row["PartitionKey"], []).append(row)
            return partitions

        partitions = await self.retry(scan)
        await bounded_gather(
            (self._delete_rows(pk, [r["RowKey"] for r in rows]) for pk, rows in partitions.items()),
            PURGE_CONCURRENCY,
        )
        listed = await summaries(
            self.listing, self.retry, "PartitionKey eq @k", LISTING_PARTITION, "RowKey"
        )
        await self._delete_listing_rows(list(listed))
        await self.retry(self.large.delete_all)

    async def partition(self, instance_id: str, keep: str | None = None) -> None:
        """Every row of one instance's partition but `keep` (a start over a finished one)."""
        rows = await self._partition_keys(instance_id)
        await self._delete_rows(instance_id, [r["RowKey"] for r in rows if r["RowKey"] != keep])

    async def _rows_of(self, ids: list[str]) -> Rows:
        """The keys (and the state rows' status) of these instances' rows, by instance, from
        one query over the key range from the first id to the last. An id the range did not
        find is looked up on its own: the service may order some characters otherwise than
        Python does (those outside the Basic Multilingual Plane)."""
        wanted = set(ids)

        async def read() -> Rows:
            found: Rows = {}
            rows = self.history.query_entities(
                "PartitionKey ge @first and PartitionKey le @last",
                parameters={"first": ids[0], "last": ids[-1]},
                select=["PartitionKey", "RowKey", "RuntimeStatus"],
                results_per_page=1000,
            )
            async for row in rows:
                if row["PartitionKey"] in wanted:
                    found.setdefault(row["PartitionKey"], []).append(row)
            return found

        found = await self.retry(read)
        for instance_id in wanted - found.keys():
            rows = await self._partition_keys(instance_id)
            if rows:
                found[instance_id] = rows
        return found

    async def _partition_keys(self, instance_id: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            rows = self.history.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": instance_id},
                select=["RowKey", "RuntimeStatus"],
            )
            return [row async for row in rows]

        return await self.retry(read)

    async def _delete_rows(self, partition: str, keys: list[str]) -> None:
        """Rows of one partition, in concurrent transactions of up to 100."""
        operations: list[Operation] = [
            ("delete", {"PartitionKey": partition, "RowKey": k}, None) for k in keys
        ]
        await asyncio.gather(
            *(self._delete(self.history, b, self.submit_history) for b in batches(operations))
        )

    async def _delete_listing_rows(self, instance_ids: list[str]) -> None:
        operations: list[Operation] = [
            ("delete", {"PartitionKey": LISTING_PARTITION, "RowKey": i}, None) for i in instance_ids
        ]
        await bounded_gather(
            (self._delete(self.listing, b, self.submit_listing) for b in batches(operations)),
            PURGE_CONCURRENCY,
        )

    async def _delete(self, table: TableClient, batch: list[Operation], submit: Submit) -> None:
        """One transaction; if it finds a row gone (deleted meanwhile, or a listing row never
        written), its rows are deleted one at a time (the SDK's delete of a missing row is
        a success)."""
        try:
            await submit(batch)
        except BatchRejectedError as err:
            if err.status != 404:
                raise
            for _, row, _ in batch:
                await self.retry(
                    lambda row=row: table.delete_entity(row["PartitionKey"], row["RowKey"])
                )
