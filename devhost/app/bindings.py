"""Input and output bindings: blob, table and queue in a storage account, as the host serves them.

Values cross the boundary as the worker hands them over: the host's data becomes a
`meta.Datum`, which the azure-functions library's own converter for the binding type decodes
(`BlobConverter` gives an `InputStream`); a value a function sets or returns is encoded by the
same converters (`QueueMessageOutConverter`, `BlobConverter`) into the Datum the host writes.
Bindings without a converter there (table) get the worker's generic one: strings and bytes
pass through. A binding type devhost does not have keeps its value in the log, not lost.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError
from azure.functions import meta

from .binding_expressions import resolve
from .binding_spec import HTTP_OUTPUT, STORAGE_BINDINGS, Binding

if TYPE_CHECKING:  # the storage SDKs load only where a host or worker opens an account
    from .storage_account import StorageAccounts

log = logging.getLogger("devhost.app.bindings")

# Called after a write, so a trigger listening there looks now rather than at its next poll:
# ("queue", queue name) or ("blob", "container/blob path").
WriteListener = Callable[[str, str], None]


class OutValue(func.Out):
    """What a function sets on an output parameter."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


def generic_encode(value: Any) -> meta.Datum:
    """The worker's generic binding: what has no converter of its own."""
    if isinstance(value, str):
        return meta.Datum(value, "string")
    if isinstance(value, bytes | bytearray):
        return meta.Datum(bytes(value), "bytes")
    return meta.Datum(json.dumps(value), "json")


def encode(binding: Binding, value: Any, annotation: Any = None) -> meta.Datum:
    """A set or returned value as the Datum the host receives, through the library's converter."""
    converter = meta.get_binding_registry().get(binding.type)
    expected = _out_type(annotation)
    if converter is not None and hasattr(converter, "encode"):
        try:
            return converter.encode(value, expected_type=expected)
        except NotImplementedError:
            pass
    return generic_encode(value)


def _out_type(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    return args[0] if args else None


def _is_plain(annotation: Any, binding: Binding) -> bool:
    """str/bytes annotations get the generic decoder, as the worker decides."""
    return annotation in (str, bytes) and binding.type != "activityTrigger"


class BindingIO:
    """Reads inputs before a call and writes outputs after it, in the bindings' accounts."""

    def __init__(
        self,
        accounts: StorageAccounts,
        queue_base64: bool = True,
        on_write: WriteListener | None = None,
    ) -> None:
        self.accounts = accounts
        self.queue_base64 = queue_base64
        self.on_write = on_write or (lambda kind, target: None)

    # -- inputs ---------------------------------------------------------------------------

    def read(self, function_name: str, binding: Binding, annotation: Any, data: dict) -> Any:
        """The value an input binding hands the function (blocking: run off the loop)."""
        if binding.type == "blob":
            datum = self._read_blob(binding, data)
            if _is_plain(annotation, binding):
                if datum.value is None:
                    return None
                raw = datum.value
                return raw.decode("utf-8") if annotation is str and isinstance(raw, bytes) else raw
            converter = meta.get_binding_registry().get("blob")
            return converter.decode(datum, trigger_metadata=None)
        if binding.type == "table":
            return self._read_table(binding, data)
        log.warning(
            "Function '%s': input binding '%s' of type %s is not supported by devhost; "
            "it gets None",
            function_name,
            binding.name,
            binding.type,
        )
        return None

    def _read_blob(self, binding: Binding, data: dict) -> meta.Datum:
        container, _, name = resolve(str(binding.get("path")), data).partition("/")
        client = self.accounts.get(binding.connection).blobs.get_blob_client(container, name)
        try:
            content = client.download_blob().readall()
        except ResourceNotFoundError:
            return meta.Datum(None, None)
        if str(binding.get("datatype", "")).lower() == "string":
            return meta.Datum(content.decode("utf-8"), "string")
        return meta.Datum(content, "bytes")

    def _read_table(self, binding: Binding, data: dict) -> str | None:
        """One entity (partition and row key) or a query's entities, as JSON text."""
        table = self.accounts.get(binding.connection).tables.get_table_client(
            resolve(str(binding.get("tablename")), data)
        )
        partition = binding.get("partitionkey")
        row = binding.get("rowkey")
        try:
            if partition is not None and row is not None:
                entity = table.get_entity(resolve(str(partition), data), resolve(str(row), data))
                return json.dumps(dict(entity))
            key = resolve(str(partition), data).replace("'", "''") if partition else None
            clauses = [f"PartitionKey eq '{key}'"] if key is not None else []
            if binding.get("filter"):
                clauses.append(f"({resolve(str(binding.get('filter')), data)})")
            take = int(binding.get("take") or 0) or None
            query = " and ".join(clauses)
            found = table.query_entities(query) if query else table.list_entities()
            rows = []
            for entity in found:
                rows.append(dict(entity))
                if take and len(rows) >= take:
                    break
            return json.dumps(rows)
        except ResourceNotFoundError:
            return None

    # -- outputs --------------------------------------------------------------------------

    def write(
        self, function_name: str, binding: Binding, value: Any, annotation: Any, data: dict
    ) -> None:
        """Write what the function set (blocking: run off the loop)."""
        if value is None:
            return
        datum = encode(binding, value, annotation)
        if binding.type == "queue":
            self._write_queue(binding, datum, data)
        elif binding.type == "blob":
            self._write_blob(binding, datum, data)
        elif binding.type == "table":
            self._write_table(binding, datum, data)
        else:
            log.warning(
                "Function '%s': output binding '%s' of type %s is not supported by devhost; "
                "it would have sent: %s",
                function_name,
                binding.name,
                binding.type,
                datum.value,
            )

    def _write_queue(self, binding: Binding, datum: meta.Datum, data: dict) -> None:
        name = resolve(str(binding.get("queuename")), data).lower()
        account = self.accounts.get(binding.connection)
        account.ensure("queue", name)
        queue = account.queues.get_queue_client(name)
        for body in _queue_bodies(datum):
            queue.send_message(self._encode_message(body))
        self.on_write("queue", name)

    def _encode_message(self, body: str | bytes) -> str:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        if self.queue_base64:
            return base64.b64encode(raw).decode("ascii")
        return raw.decode("utf-8")

    def _write_blob(self, binding: Binding, datum: meta.Datum, data: dict) -> None:
        path = resolve(str(binding.get("path")), data)
        container, _, name = path.partition("/")
        account = self.accounts.get(binding.connection)
        account.ensure("blob", container)
        content = datum.value.encode("utf-8") if isinstance(datum.value, str) else datum.value
        account.blobs.get_blob_client(container, name).upload_blob(content, overwrite=True)
        self.on_write("blob", path)

    def _write_table(self, binding: Binding, datum: meta.Datum, data: dict) -> None:
        value = json.loads(datum.value) if isinstance(datum.value, str | bytes) else datum.value
        entities = value if isinstance(value, list) else [value]
        name = resolve(str(binding.get("tablename")), data)
        account = self.accounts.get(binding.connection)
        account.ensure("table", name)
        table = account.tables.get_table_client(name)
        for entity in entities:
            row = dict(entity)
            for key, prop in (("PartitionKey", "partitionkey"), ("RowKey", "rowkey")):
                if key not in row and binding.get(prop) is not None:
                    row[key] = resolve(str(binding.get(prop)), data)
                if key not in row:
                    raise ValueError(f"table output '{binding.name}': an entity has no {key}")
            table.upsert_entity(row)


def _queue_bodies(datum: meta.Datum) -> list[str | bytes]:
    """One message per string, or one per item of a JSON list; QueueMessage JSON gives its body."""
    if datum.type in ("string", "bytes"):
        return [datum.value]
    value = json.loads(datum.value)
    items = value if isinstance(value, list) else [value]
    bodies: list[str | bytes] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"id", "body"}:
            bodies.append(item["body"])
        else:
            bodies.append(item if isinstance(item, str) else json.dumps(item))
    return bodies


def unsupported(bindings: list[Binding]) -> list[Binding]:
    """Bindings devhost has no implementation of (their values are logged instead)."""
    handled = {*STORAGE_BINDINGS, HTTP_OUTPUT}
    return [b for b in bindings if not b.is_trigger and b.type not in handled]
