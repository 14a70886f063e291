"""Values too large for a table row, kept compressed in blobs as the Azure Storage provider does.

A text property longer than LARGE_TEXT characters is not written to its row: the row holds
`<name>BlobName`, the name of a gzip-compressed blob in the container `<hub>-largemessages`.
Blob names are content addresses under a folder per instance (`<hash of id>/<hash of text>`),
so writing the same value twice is harmless and a row never points at a blob whose content
changed; a crash between the upload and the row's write leaves at most an unreferenced blob,
which purging the instance deletes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from ..azurite import client_options
from .bounded import bounded_gather

LARGE_TEXT = 45_000  # characters; below this a value is chunked across row properties
BLOB_SUFFIX = "BlobName"
DELETES_AT_ONCE = 16


@dataclass(frozen=True)
class PendingBlob:
    """A large value waiting to be uploaded; replaced by its blob name before the row is sent."""

    text: str


def instance_folder(instance_id: str) -> str:
    return hashlib.sha256(instance_id.encode()).hexdigest()[:32]


class LargeValues:
    """Uploads and reads the blobs behind large row properties, for one task hub."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self._service = BlobServiceClient.from_connection_string(
            connection_string, retry_total=0, **client_options(connection_string)
        )
        self._container: ContainerClient = self._service.get_container_client(
            f"{hub.lower()}-largemessages"
        )
        self._container_ready = False

    async def close(self) -> None:
        await self._service.close()

    def pending(self, entities: list[dict[str, Any]]) -> bool:
        return any(isinstance(v, PendingBlob) for e in entities for v in e.values())

    async def offload(self, entity: dict[str, Any]) -> None:
        """Upload each PendingBlob of the row and put its blob name in its place."""
        for key, value in list(entity.items()):
            if not isinstance(value, PendingBlob):
                continue
            data = value.text.encode()
            name = (
                f"{instance_folder(entity['PartitionKey'])}/"
                f"{hashlib.sha256(data).hexdigest()[:40]}.json.gz"
            )
            if not self._container_ready:
                with contextlib.suppress(ResourceExistsError):
                    await self._container.create_container()
                self._container_ready = True
            await self._container.upload_blob(name, gzip.compress(data, 5), overwrite=True)
            entity[key] = name

    async def inflate(self, entity: dict[str, Any]) -> None:
        """Read back every blob the row names, as the plain property it stands for."""
        for key in [k for k in entity if k.endswith(BLOB_SUFFIX)]:
            blob = await self._container.download_blob(entity[key])
            entity[key[: -len(BLOB_SUFFIX)]] = gzip.decompress(await blob.readall()).decode()

    async def delete_instances(self, instance_ids: list[str]) -> None:
        """The blobs of these instances, found with one listing of the container."""
        folders = {instance_folder(i) for i in instance_ids}
        await self._delete_where(lambda name: name.partition("/")[0] in folders)

    async def delete_all(self) -> None:
        await self._delete_where(lambda name: True)

    async def _delete_where(self, wanted: Callable[[str], bool]) -> None:
        if not self._container_ready and not await self._container.exists():
            return
        self._container_ready = True
        names = [blob.name async for blob in self._container.list_blobs() if wanted(blob.name)]
        await bounded_gather((self._container.delete_blob(name) for name in names), DELETES_AT_ONCE)
