"""Where a timer's schedule status (last and next occurrence) is kept between host runs.

As the Functions host keeps it: a blob per function, `azure-webjobs-hosts/timers/<host id>/
<function>/status`, holding `{"Last", "Next", "LastUpdated"}`; in memory when there is no account.
"""

from __future__ import annotations

import json

from azure.core.exceptions import ResourceNotFoundError

from ..app.storage_account import StorageAccount

HOSTS_CONTAINER = "azure-webjobs-hosts"


class ScheduleStatusStore:
    """Last and next occurrence per function: a blob per function, or memory without account."""

    def __init__(self, account: StorageAccount | None, host_id: str) -> None:
        self.account = account
        self.host_id = host_id
        self._memory: dict[str, dict[str, str]] = {}

    def _blob(self, name: str):
        assert self.account
        self.account.ensure("blob", HOSTS_CONTAINER)
        path = f"timers/{self.host_id}/{name}/status"
        return self.account.blobs.get_blob_client(HOSTS_CONTAINER, path)

    def load(self, name: str) -> dict[str, str] | None:
        if self.account is None:
            return self._memory.get(name)
        try:
            return json.loads(self._blob(name).download_blob().readall())
        except ResourceNotFoundError:
            return None

    def save(self, name: str, status: dict[str, str]) -> None:
        if self.account is None:
            self._memory[name] = status
            return
        self._blob(name).upload_blob(json.dumps(status).encode(), overwrite=True)
