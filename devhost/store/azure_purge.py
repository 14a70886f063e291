"""Purging the Azure task hub at scale: thousands of instances in few round trips.

An instance's rows are one partition of the History table, and a transaction holds rows of one
partition only, so a purge costs at least a transaction per instance. Everything else is shared:
the rows are found a hundred instances a query (a key range over their sorted ids: a query per
partition would double the round trips), and each group is deleted as soon as its query answers
(GROUPS_AT_ONCE groups in flight, so memory stays bounded however many instances match), in
transactions of up to 100 rows, PURGE_CONCURRENCY transactions at a time across every group
(Azurite answers them in turn; more only wait in its queue). The large values' blobs are found
with a listing of their container per group, and the group's listing rows go last, 100 a
transaction (a group at a time, not the whole purge's at its end: an id started again after its
group keeps its new listing row and blobs). The state row's status, read with the keys, lets a
purge of finished instances leave alone one that turned out live, without a read of its own.

Crash safety: an instance's state row goes in its partition's first transaction (with up to 99
other rows: an instance of up to 100 rows goes at once), so an instance is either whole or gone,
never found with part of its history. What a crash leaves behind is found again: the listing row
is deleted only after the instance's rows and blobs, so a purge run again finds the instance by
its filter and finishes it, and a host that opens the hub finishes it too (`AzureStore`'s
recovery deletes what is left of a partition whose listing row outlived its state row).

`delete-task-hub` on the emulator drops the History and Instances tables and creates them again:
Azurite looks a row up among every row of the table with the same RowKey (`h00000000`,
`state`...), so a row's delete costs in proportion to the hub's size, and a table's delete costs
nothing. On Azure a dropped table cannot be created again for about 40 s (409
TableBeingDeleted), during which a running host could write nothing: there the rows are deleted
in the batches above, which Azure spreads over its partitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from azure.data.tables.aio import TableClient, TableServiceClient

from ..taskhub.model import RuntimeStatus
from .azure_listing import LISTING_PARTITION, batches
from .azure_queries import summaries
from .azure_retry import Retrying
from .bounded import bounded_gather
from .large_values import LargeValues
from .table_batch import BatchRejectedError, Operation

STATE_KEY = "state"  # the row holding an instance's status (see azure)
PURGE_CONCURRENCY = 16  # transactions under way at once: more only queue in Azurite
PURGE_GROUP = 100  # instances whose rows one query finds
GROUPS_AT_ONCE = 4  # groups read ahead of their deletes
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
        self._slots = asyncio.Semaphore(PURGE_CONCURRENCY)

    async def instances(
        self, instance_ids: list[str], finished_only: bool, live: tuple[str, ...]
    ) -> tuple[int, list[str]]:
        """How many instances were deleted, and the ids now gone (all but those left alone:
        with `finished_only`, an instance whose state row's status is in `live`)."""
        ids = sorted(set(instance_ids))
        groups = [ids[i : i + PURGE_GROUP] for i in range(0, len(ids), PURGE_GROUP)]
        done = await bounded_gather(
            (self._group(g, finished_only, live) for g in groups), GROUPS_AT_ONCE
        )
        return sum(deleted for deleted, _ in done), [i for _, gone in done for i in gone]

    async def leftovers(self, instance_ids: list[str]) -> None:
        """What an interrupted purge left of these instances, found by their listing rows
        without a state row; an instance whose state row is there (it started meanwhile) is
        left alone."""
        await self.instances(instance_ids, True, tuple(str(s) for s in RuntimeStatus))

    async def _group(
        self, ids: list[str], finished_only: bool, live: tuple[str, ...]
    ) -> tuple[int, list[str]]:
        """One group's rows, read with one query and deleted at once, then its blobs and its
        listing rows (last: by them a purge run again finds the rest). Done group by group, so
        an id started again once its group is done keeps what it writes (the engine holds the
        group's ids while it is purged)."""
        found = await self._rows_of(ids)
        states = {i: next((r for r in rows if r["RowKey"] == STATE_KEY), None)
                  for i, rows in found.items()}  # fmt: skip
        kept = {
            i
            for i, state in states.items()
            if finished_only and state is not None and state.get("RuntimeStatus") in live
        }
        await asyncio.gather(
            *(self._delete_rows(i, [r["RowKey"] for r in rows]) for i, rows in found.items()
              if i not in kept)
        )  # fmt: skip
        deleted = sum(1 for i, state in states.items() if state is not None and i not in kept)
        gone = [i for i in ids if i not in kept]
        await self.retry(lambda: self.large.delete_instances(gone))
        await self._delete_listing_rows(gone)
        return deleted, gone

    async def everything(self) -> None:
        """Every row of the History table and of the listing, and every large-value blob, in
        transactions (see the module's docstring for when the tables are dropped instead)."""

        async def scan() -> Rows:
            partitions: Rows = {}
            rows = self.history.list_entities(
                select=["PartitionKey", "RowKey"], results_per_page=1000
            )
            async for row in rows:
                partitions.setdefault(row["PartitionKey"], []).append(row)
            return partitions

        partitions = await self.retry(scan)
        await asyncio.gather(
            *(self._delete_rows(pk, [r["RowKey"] for r in rows]) for pk, rows in partitions.items())
        )
        listed = await summaries(
            self.listing, self.retry, "PartitionKey eq @k", LISTING_PARTITION, "RowKey"
        )
        await self._delete_listing_rows(list(listed))
        await self.retry(self.large.delete_all)

    async def recreate_tables(self, service: TableServiceClient) -> None:
        """Drop the History and Instances tables and create them again (the emulator's
        delete-task-hub), then every large-value blob. History first: a crash after it leaves
        listing rows without state rows, which the next host's recovery deletes."""
        for table in (self.history, self.listing):
            await self.retry(lambda name=table.table_name: service.delete_table(name))
        for table in (self.history, self.listing):
            await self.retry(lambda name=table.table_name: service.create_table_if_not_exists(name))
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
        """Rows of one partition in transactions of up to 100: the state row in the first
        (an instance is gone once it is), the others after it, at once."""
        keys = sorted(keys, key=lambda key: key != STATE_KEY)
        operations: list[Operation] = [
            ("delete", {"PartitionKey": partition, "RowKey": k}, None) for k in keys
        ]
        if not operations:
            return
        first, *rest = batches(operations)
        await self._delete(self.history, first, self.submit_history)
        await asyncio.gather(*(self._delete(self.history, b, self.submit_history) for b in rest))

    async def _delete_listing_rows(self, instance_ids: list[str]) -> None:
        operations: list[Operation] = [
            ("delete", {"PartitionKey": LISTING_PARTITION, "RowKey": i}, None) for i in instance_ids
        ]
        await asyncio.gather(
            *(self._delete(self.listing, b, self.submit_listing) for b in batches(operations))
        )

    async def _delete(self, table: TableClient, batch: list[Operation], submit: Submit) -> None:
        """One transaction (at most PURGE_CONCURRENCY under way); if it finds a row gone
        (deleted meanwhile, or a listing row never written), its rows are deleted one at a
        time (the SDK's delete of a missing row is a success)."""
        async with self._slots:
            try:
                await submit(batch)
            except BatchRejectedError as err:
                if err.status != 404:
                    raise
                for _, row, _ in batch:
                    await self.retry(
                        lambda row=row: table.delete_entity(row["PartitionKey"], row["RowKey"])
                    )
