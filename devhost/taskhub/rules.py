"""The runtime's input rules and size limits, checked by the engine so both stores agree.

Ids, names and keys follow the Durable Functions extension's own checks (`DurableClient`): an
instance id is 1 to 256 characters without `/`, `\\`, `#`, `?` or control characters, and `@`
starts only an entity's id. The messages are the extension's, so an error reads the same as on
Azure. Payload limits are devhost's own where the runtime states none.
"""

from __future__ import annotations

from .errors import EngineError

MAX_ID_LENGTH = 256
# The runtime's documented limit: 16 KB of UTF-16 JSON text.
MAX_CUSTOM_STATUS_CHARS = 8 * 1024
# Inputs, outputs, event data, activity results and entity state: large values are kept
# compressed in blobs on the Azure store, up to this size of JSON text.
MAX_PAYLOAD_CHARS = 16 * 1024 * 1024


def has_invalid_character(text: str) -> bool:
    """`/`, `\\`, `#`, `?` or a control character: refused in ids, names and table keys."""
    return any(c in "/\\#?" or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def check_instance_id(instance_id: str) -> None:
    """Raise a 400 for an id the runtime would refuse (for new and existing instances alike)."""
    if not instance_id:
        raise EngineError(400, "Orchestration instance ids must not be empty.")
    if instance_id.startswith("@"):
        raise EngineError(400, "Orchestration instance ids must not start with @.")
    if has_invalid_character(instance_id):
        raise EngineError(
            400, "Orchestration instance ids must not contain /, \\, #, ?, or control characters."
        )
    if len(instance_id) > MAX_ID_LENGTH:
        raise EngineError(400, f"Instance ID lengths must not exceed {MAX_ID_LENGTH} characters.")


def check_name(kind: str, name: str) -> None:
    """Event and function names: 1 to 256 characters, none of the characters ids refuse."""
    if not name:
        raise EngineError(400, f"{kind} names must not be empty.")
    if has_invalid_character(name) or len(name) > MAX_ID_LENGTH:
        raise EngineError(
            400,
            f"{kind} names must be at most {MAX_ID_LENGTH} characters, without /, \\, #, ?, "
            "or control characters.",
        )


def check_entity_id(name: str, key: str) -> None:
    """An entity's name may not hold `@` (it separates name and key in the scheduler id)."""
    check_name("Entity", name)
    if "@" in name:
        raise EngineError(400, "Entity names must not contain @.")
    if not key:
        raise EngineError(400, "Entity keys must not be empty.")
    if has_invalid_character(key):
        raise EngineError(400, "Entity keys must not contain /, \\, #, ?, or control characters.")
    if len(key) > MAX_ID_LENGTH:
        raise EngineError(400, f"Entity keys must not exceed {MAX_ID_LENGTH} characters.")


def check_payload(what: str, text: str | None) -> None:
    """A 413 for a payload past the limit, before anything is stored."""
    if text is not None and len(text) > MAX_PAYLOAD_CHARS:
        raise EngineError(413, payload_too_large(what, len(text)))


def payload_too_large(what: str, size: int) -> str:
    return (
        f"The {what} is {size:,} characters of JSON; devhost keeps at most {MAX_PAYLOAD_CHARS:,}."
    )


def not_purged_reason(live: list[tuple[str, str]]) -> str | None:
    """Why a purge deleted nothing, given the (id, status) of the live instances it was asked
    for: the runtime answers only 404, and only a finished instance can be purged."""
    if not live:
        return None
    if len(live) == 1:
        what = f"instance '{live[0][0]}' is {live[0][1]}"
    else:
        what = f"the {len(live)} matching instances are not finished"
    return f"Only a finished instance can be purged: {what}; nothing was deleted."
