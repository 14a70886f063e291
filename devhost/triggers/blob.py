"""Blob triggers: new and changed blobs of a container, matched against the binding's path.

The path is `container/pattern`, where `{name}`-style parts bind to what they match. A scan lists
the blobs under the pattern's literal prefix; a blob runs the function once per version (ETag).
As the host, devhost writes a receipt per handled version in the account, under
`azure-webjobs-hosts/blobreceipts/<host id>/<function>/<etag>/<container>/<blob>`, so a restart
does not run it again. A version that fails five times is given up: a message naming it goes to
the `webjobs-blobtrigger-poison` queue. Scans back off while nothing changes; a blob written by
this host's own output binding wakes the scan at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from azure.functions import meta
from azure.storage.blob import BlobProperties

from ..app.app_index import FunctionInfo
from ..app.binding_expressions import expand_settings
from ..app.storage_account import StorageAccount

log = logging.getLogger("devhost.blob")

MIN_SCAN_INTERVAL = 0.25  # seconds
MAX_SCAN_INTERVAL = 5.0
MAX_TRIES = 5
HOSTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"

Invoke = Callable[[FunctionInfo, Any, dict[str, Any]], Awaitable[Any]]
RunBlocking = Callable[..., Awaitable[Any]]
PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")


class BlobPattern:
    """`container/prefix{name}.txt` as a container, a literal prefix and a regular expression."""

    def __init__(self, path: str) -> None:
        self.path = expand_settings(path)
        self.container, _, pattern = self.path.partition("/")
        if not self.container or not pattern or "{" in self.container:
            raise ValueError(f"blob trigger path {path!r}: expected container/pattern")
        self.prefix = pattern.split("{", 1)[0]
        regex, position = "", 0
        for found in PARAMETER.finditer(pattern):
            regex += re.escape(pattern[position : found.start()])
            regex += f"(?P<{found.group(1).replace('-', '_')}>.+?)"
            position = found.end()
        self.regex = re.compile(regex + re.escape(pattern[position:]) + "$")

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self.regex.match(blob_name)
        return found.groupdict() if found else None


class BlobListener:
    """Runs one function for each new or changed blob its path matches."""

    def __init__(
        self,
        info: FunctionInfo,
        account: StorageAccount,
        host_id: str,
        invoke: Invoke,
        run_blocking: RunBlocking,
    ) -> None:
        self.info = info
        self.account = account
        self.pattern = BlobPattern(str(info.trigger.get("path", "")))
        self.invoke = invoke
        self.run_blocking = run_blocking
        self.receipts_prefix = f"blobreceipts/{host_id}/{info.name}/"
        self.container = account.blobs.get_container_client(self.pattern.container)
        self.hosts = account.blobs.get_container_client(HOSTS_CONTAINER)
        self._done: set[tuple[str, str]] = set()  # (blob name, etag)
        self._failures: dict[tuple[str, str], int] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await self.run_blocking(self._prepare)
        delay = MIN_SCAN_INTERVAL
        while True:
            self._wake.clear()
            try:
                changed = await self.run_blocking(self._scan)
            except Exception:  # noqa: BLE001 - storage down: keep scanning, with back-off
                log.warning("Blob trigger '%s': scan failed", self.info.name, exc_info=True)
                changed = []
            for blob in changed:
                try:
                    await self._handle(blob)
                except Exception:  # noqa: BLE001 - no receipt: the next scan tries it again
                    log.warning("Blob trigger '%s': %s not settled", self.info.name, blob.name)
            if changed:
                delay = MIN_SCAN_INTERVAL
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, MAX_SCAN_INTERVAL)

    def _prepare(self) -> None:
        self.account.ensure("blob", self.pattern.container)
        self.account.ensure("blob", HOSTS_CONTAINER)
        for receipt in self.hosts.list_blobs(name_starts_with=self.receipts_prefix):
            etag, _, rest = receipt.name[len(self.receipts_prefix) :].partition("/")
            _, _, blob_name = rest.partition("/")
            self._done.add((blob_name, etag))

    def _scan(self) -> list[BlobProperties]:
        return [
            blob
            for blob in self.container.list_blobs(name_starts_with=self.pattern.prefix)
            if (blob.name, _etag(blob)) not in self._done and self.pattern.match(blob.name)
        ]

    async def _handle(self, blob: BlobProperties) -> None:
        key = (blob.name, _etag(blob))
        try:
            content = await self.run_blocking(self._download, blob.name)
            data = {
                **(self.pattern.match(blob.name) or {}),
                "BlobTrigger": f"{self.pattern.container}/{blob.name}",
                "Uri": self.container.get_blob_client(blob.name).url,
            }
            await self.invoke(self.info, self._trigger_value(blob, content, data), data)
        except Exception:
            tries = self._failures[key] = self._failures.get(key, 0) + 1
            log.exception(
                "Function '%s' failed on blob %s (try %d of %d)",
                self.info.name,
                blob.name,
                tries,
                MAX_TRIES,
            )
            if tries < MAX_TRIES:
                return
            await self.run_blocking(self._to_poison, blob)
        self._failures.pop(key, None)
        await self.run_blocking(self._receipt, key)

    def _download(self, name: str) -> bytes:
        return self.container.get_blob_client(name).download_blob().readall()

    def _trigger_value(self, blob: BlobProperties, content: bytes, data: dict[str, Any]) -> Any:
        annotation = self.info.annotations.get(self.info.trigger_param)
        data_type = str(self.info.trigger.get("dataType", "")).lower()
        if annotation is bytes or data_type == "binary":
            return content
        if annotation is str or data_type == "string":
            return content.decode("utf-8")
        metadata = {
            "BlobTrigger": meta.Datum(data["BlobTrigger"], "string"),
            "Uri": meta.Datum(data["Uri"], "string"),
            "Properties": meta.Datum(json.dumps({"ContentLength": blob.size}), "json"),
            "Metadata": meta.Datum(json.dumps(dict(blob.metadata or {})), "json"),
        }
        converter = meta.get_binding_registry().get("blobTrigger")
        return converter.decode(meta.Datum(content, "bytes"), trigger_metadata=metadata)

    def _receipt(self, key: tuple[str, str]) -> None:
        name, etag = key
        path = f"{self.receipts_prefix}{etag}/{self.pattern.container}/{name}"
        self.hosts.get_blob_client(path).upload_blob(b"", overwrite=True)
        self._done.add(key)

    def _to_poison(self, blob: BlobProperties) -> None:
        self.account.ensure("queue", POISON_QUEUE)
        message = {
            "Type": "BlobTrigger",
            "FunctionId": self.info.name,
            "BlobType": "BlockBlob",
            "ContainerName": self.pattern.container,
            "BlobName": blob.name,
            "ETag": _etag(blob),
        }
        self.account.queues.get_queue_client(POISON_QUEUE).send_message(json.dumps(message))


def _etag(blob: BlobProperties) -> str:
    return str(blob.etag).strip('"')
