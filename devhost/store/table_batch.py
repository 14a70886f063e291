"""Entity-group transactions on Azure Table storage, sent directly over aiohttp.

The commit of every episode is one transaction, so its cost is the store's cost. The Azure SDK
builds and parses the multipart batch format with the `email` package, which costs several
milliseconds of CPU per batch here (more than Azurite takes to apply it); this module writes the
same wire format with string formatting and reads back only the status lines and ETags.
Everything else (queries, single-row writes) goes through the SDK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

API_VERSION = "2019-02-02"
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3})")
ETAG_LINE = re.compile(rb"(?im)^ETag: (.+?)\r?$")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~-]*")  # what quoting leaves as it is (most keys)


class BatchRejectedError(Exception):
    """The service refused the transaction (e.g. an ETag did not match); nothing was applied."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"transaction rejected ({status}): {detail}")
        self.status = status


class BatchServerError(Exception):
    """The service failed (5xx): treated like an outage and retried."""


@dataclass(frozen=True)
class Account:
    name: str
    key: bytes
    table_endpoint: str

    @classmethod
    def from_connection_string(cls, connection: str) -> Account:
        parts = dict(
            item.split("=", 1) for item in connection.strip().strip(";").split(";") if "=" in item
        )
        name = parts["AccountName"]
        endpoint = parts.get("TableEndpoint")
        if not endpoint:
            protocol = parts.get("DefaultEndpointsProtocol", "https")
            suffix = parts.get("EndpointSuffix", "core.windows.net")
            endpoint = f"{protocol}://{name}.table.{suffix}"
        return cls(name, base64.b64decode(parts["AccountKey"]), endpoint.rstrip("/"))


# kind (upsert, insert, update or delete), entity, and the ETag an update must match
Operation = tuple[str, dict[str, Any], str | None]


def _quoted_key(key: Any) -> str:
    text = str(key)
    if PLAIN_KEY.fullmatch(text):
        return text
    return quote(text.replace("'", "''"), safe="")


def _key_path(entity: dict[str, Any]) -> str:
    pk, rk = _quoted_key(entity["PartitionKey"]), _quoted_key(entity["RowKey"])
    return f"(PartitionKey='{pk}',RowKey='{rk}')"


def _body(entity: dict[str, Any]) -> str:
    if all(type(value) is str for value in entity.values()):  # history rows: nothing to annotate
        return json.dumps(entity, separators=(",", ":"))
    body: dict[str, Any] = {}
    for key, value in entity.items():
        if isinstance(value, datetime):
            body[key] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body[f"{key}@odata.type"] = "Edm.DateTime"
        elif isinstance(value, bool | str) or value is None:
            body[key] = value
        elif isinstance(value, int):
            body[key] = value
            if not -(2**31) <= value < 2**31:
                body[key] = str(value)
                body[f"{key}@odata.type"] = "Edm.Int64"
        else:
            body[key] = value
    return json.dumps(body, separators=(",", ":"))


def encode_batch(table_url: str, operations: list[Operation]) -> tuple[str, bytes]:
    """The multipart body of one entity-group transaction on the table at `table_url`, and its
    batch boundary (the request's Content-Type names it)."""
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for kind, entity, etag in operations:
        lines += [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
        ]
        if kind == "insert":
            lines += [f"POST {table_url} HTTP/1.1", "Prefer: return-no-content"]
        else:
            method = {"upsert": "PUT", "update": "PUT", "delete": "DELETE"}[kind]
            lines.append(f"{method} {table_url}{_key_path(entity)} HTTP/1.1")
            if kind == "update":
                lines.append(f"If-Match: {etag or '*'}")
            elif kind == "delete":
                lines.append("If-Match: *")
        lines += ["Accept: application/json;odata=minimalmetadata", "DataServiceVersion: 3.0"]
        if kind == "delete":
            lines += ["", ""]
        else:
            lines += ["Content-Type: application/json", "", _body(entity)]
    lines += [f"--{changeset}--", f"--{batch}--", ""]
    return batch, "\r\n".join(lines).encode()


def read_batch_response(raw: bytes, operations: list[Operation]) -> list[str | None]:
    """The ETag of each operation from a 202 answer; BatchRejectedError if one failed."""
    statuses = [int(s) for s in STATUS_LINE.findall(raw)]
    failed = [s for s in statuses if s >= 300]
    if failed or len(statuses) != len(operations):
        raise BatchRejectedError(failed[0] if failed else 0, raw[-400:].decode(errors="replace"))
    etags = [e.decode().strip() for e in ETAG_LINE.findall(raw)]
    result: list[str | None] = []
    for kind, _, _ in operations:
        result.append(None if kind == "delete" else (etags.pop(0) if etags else None))
    return result


class TableBatchClient:
    """Sends transactions for one table; `submit` returns the ETag of each operation."""

    def __init__(self, account: Account, table: str, session: aiohttp.ClientSession) -> None:
        self.account = account
        self.table_url = f"{account.table_endpoint}/{table}"
        self.batch_url = f"{account.table_endpoint}/$batch"
        self.session = session

    def _authorization(self, date: str) -> str:
        path = urlsplit(self.batch_url).path
        resource = f"/{self.account.name}{path}"
        digest = hmac.new(self.account.key, f"{date}\n{resource}".encode(), hashlib.sha256)
        return f"SharedKeyLite {self.account.name}:{base64.b64encode(digest.digest()).decode()}"

    async def submit(self, operations: list[Operation]) -> list[str | None]:
        boundary, body = encode_batch(self.table_url, operations)
        date = formatdate(usegmt=True)
        headers = {
            "x-ms-date": date,
            "x-ms-version": API_VERSION,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={boundary}",
            "Authorization": self._authorization(date),
        }
        async with self.session.post(self.batch_url, data=body, headers=headers) as response:
            raw = await response.read()
            if response.status >= 500:
                raise BatchServerError(f"{response.status}: {raw[:200]!r}")
            if response.status != 202:
                raise BatchRejectedError(response.status, raw[:300].decode(errors="replace"))
        return read_batch_response(raw, operations)
