"""Bindings as both programming models declare them, read into one record.

The v2 decorators hand out dicts with enum directions and camelCase keys; a v1 `function.json`
has strings in whatever case the author typed ("datatype", "dataType"). The host reads both
case-insensitively, so a `Binding` keeps its properties under lower-cased keys.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.functions import meta

HTTP_TRIGGER = "httpTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
BLOB_TRIGGER = "blobTrigger"
DURABLE_CLIENT = "durableClient"
HTTP_OUTPUT = "http"
RETURN = "$return"

# Triggers devhost runs; the Durable ones and HTTP need no storage account.
SUPPORTED_TRIGGERS = (
    HTTP_TRIGGER,
    ORCHESTRATION_TRIGGER,
    ACTIVITY_TRIGGER,
    ENTITY_TRIGGER,
    TIMER_TRIGGER,
    QUEUE_TRIGGER,
    BLOB_TRIGGER,
)
# Storage bindings devhost reads and writes itself.
STORAGE_BINDINGS = ("blob", "queue", "table")
# Triggers of real Azure extensions that devhost does not run: such functions are listed, not
# started. Anything else ending in "Trigger" is a typo or an extension nobody ships: an error.
FOREIGN_TRIGGERS = {
    name for name in meta.get_binding_registry()._bindings if isinstance(name, str)
} | {
    "sqlTrigger",
    "rabbitMQTrigger",
    "signalRTrigger",
    "webPubSubTrigger",
    "redisPubSubTrigger",
    "redisListTrigger",
    "redisStreamTrigger",
    "daprBindingTrigger",
    "daprServiceInvocationTrigger",
    "daprTopicTrigger",
}
_CANONICAL_TYPES = {
    name.lower(): name
    for name in (*SUPPORTED_TRIGGERS, *FOREIGN_TRIGGERS, *STORAGE_BINDINGS, DURABLE_CLIENT)
}
# The Durable extension's older name for the client binding (Durable Functions 1.x).
_CANONICAL_TYPES["orchestrationclient"] = DURABLE_CLIENT


@dataclass
class Binding:
    """One binding of a function: its parameter name, canonical type, direction and settings."""

    name: str
    type: str
    direction: str  # "in" or "out"
    props: dict[str, Any] = field(default_factory=dict)  # every property, lower-cased keys

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Binding:
        props = {str(k).lower(): v for k, v in raw.items()}
        direction = props.get("direction", "in")
        direction = getattr(direction, "name", direction)  # the v2 decorators' BindingDirection
        kind = str(props.get("type", ""))
        return cls(
            name=str(props.get("name", "")),
            type=_CANONICAL_TYPES.get(kind.lower(), kind),
            direction=str(direction).lower(),
            props=props,
        )

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key.lower(), default)

    @property
    def is_trigger(self) -> bool:
        return self.type.endswith("Trigger")

    @property
    def is_output(self) -> bool:
        return self.direction == "out"

    @property
    def connection(self) -> str:
        """The app setting holding the storage account's connection string."""
        return str(self.get("connection") or "AzureWebJobsStorage")


def type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Parameter and return annotations, evaluated as the worker evaluates them (string
    annotations under `from __future__ import annotations` included); {} if they cannot be."""
    try:
        return typing.get_type_hints(inspect.unwrap(function))
    except Exception:  # noqa: BLE001 - unresolvable annotations: the worker ignores them too
        return {}
