"""One host per task hub: a lease row in the hub's `Leases` table, taken when the store opens,
renewed every LEASE_SECONDS / 3, and let go when it closes.

A lease held by a process of this machine that no longer exists is taken at once; one held by
a live host refuses the open with who holds it. A lease lost while running (another host took
it after storage came back without our row) is reported: the layer above decides to stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .azure_retry import Retrying
from .azure_rows import utc

log = logging.getLogger("devhost.store")
LEASE_SECONDS = 30


class HubInUseError(Exception):
    """Another host holds this task hub's lease."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a hub's lease, until when, and the address it serves the hub at."""

    owner: str
    expires: datetime
    address: str | None

    @property
    def live(self) -> bool:
        return self.expires > datetime.now(UTC) and holder_alive(self.owner)


async def lease_holder(table: TableClient, hub: str, retry: Retrying) -> LeaseHolder | None:
    """Who holds the hub's lease (read beside its holder); None if no one ever took it."""
    try:
        row = await retry(lambda: table.get_entity("lease", hub))
    except ResourceNotFoundError:  # no lease row, or no Leases table yet
        return None
    return LeaseHolder(row["Owner"], utc(row["ExpiresAt"]), row.get("Address") or None)


class HubLease:
    """This host's lease on one task hub; `address` is where the host serves the hub, kept in
    the lease row so that the durable CLI finds it (see commands/running_hosts)."""

    def __init__(
        self,
        table: TableClient,
        hub: str,
        owner: str,
        retry: Retrying,
        on_lost: Callable[[str], None],
        address: str | None = None,
    ) -> None:
        self.table = table
        self.hub = hub
        self.owner = owner
        self.address = address
        self._retry = retry
        self._on_lost = on_lost
        self._etag: str | None = None
        self._renewing: asyncio.Task | None = None

    def _entity(self) -> dict[str, Any]:
        expires = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)
        return {
            "PartitionKey": "lease",
            "RowKey": self.hub,
            "Owner": self.owner,
            "ExpiresAt": expires,
            "Address": self.address or "",
        }

    async def acquire(self) -> None:
        """Take the lease, or refuse with who holds it."""
        try:
            result = await self._retry(lambda: self.table.create_entity(self._entity()))
            self._etag = result.get("etag")
            return
        except ResourceExistsError:
            pass
        current = await self._retry(lambda: self.table.get_entity("lease", self.hub))
        expires = utc(current["ExpiresAt"])
        holder = current["Owner"]
        if holder != self.owner and expires > datetime.now(UTC) and holder_alive(holder):
            raise HubInUseError(
                f"task hub '{self.hub}' is in use by another host ({holder}) until "
                f"{expires:%H:%M:%S} UTC; stop it, or give this host another hubName"
            )
        result = await self._retry(
            lambda: self.table.update_entity(
                self._entity(),
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        )
        self._etag = result.get("etag")

    def keep(self) -> None:
        """Renew the lease in the background until `release`."""
        self._renewing = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                result = await self._retry(
                    lambda: self.table.update_entity(
                        self._entity(),
                        mode=UpdateMode.REPLACE,
                        etag=self._etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
                self._etag = result.get("etag")
            except (HttpResponseError, ResourceNotFoundError):
                try:  # the row changed or vanished (storage restored); take it again if free
                    await self.acquire()
                except HubInUseError as err:
                    log.critical("Lost the lease: %s.", err)
                    self._on_lost(str(err))
                    return

    async def release(self) -> None:
        """Stop renewing and delete the lease row (best effort: it expires anyway)."""
        if self._renewing is None:
            return
        self._renewing.cancel()
        await asyncio.gather(self._renewing, return_exceptions=True)
        try:
            await asyncio.wait_for(
                self.table.delete_entity(
                    "lease",
                    self.hub,
                    etag=self._etag,
                    match_condition=MatchConditions.IfNotModified,
                ),
                timeout=2,
            )
        except Exception:  # noqa: BLE001 - best effort; the lease expires anyway
            log.debug("lease not released", exc_info=True)


def holder_alive(holder: str) -> bool:
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
