"""Management URLs that curl and browsers can fetch, whatever the instance id holds.

The SDK's `create_check_status_response` builds its URLs by putting the raw instance id in
place of the binding's placeholder, so an id such as `Zoë x&y` would give a URL with a space,
an `&` and a non-ASCII letter in its path. The Functions host percent-encodes the id in the URLs
it hands out itself; this module does the same to the check-status answer an HTTP function
returns: only a JSON object with `id` and `statusQueryGetUri` (the SDK's shape), only the path
segment that is the id, and the `Location` header that repeats the status URL.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from .client_binding import WEBHOOK_PATH


def encoded_id(instance_id: str) -> str:
    """The id as one path segment: every reserved or non-ASCII character percent-encoded."""
    return quote(instance_id, safe="")


def encode_status_links(
    headers: dict[str, str], body: bytes
) -> tuple[dict[str, str], bytes] | None:
    """The answer with its management URLs encoded, or None if it holds none to encode."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    instance_id, status_url = payload.get("id"), payload.get("statusQueryGetUri")
    if not isinstance(instance_id, str) or not isinstance(status_url, str):
        return None
    raw = f"{WEBHOOK_PATH}/instances/{instance_id}"
    encoded = f"{WEBHOOK_PATH}/instances/{encoded_id(instance_id)}"
    if raw == encoded:
        return None
    links = {
        key: value.replace(raw, encoded, 1) if key != "id" and isinstance(value, str) else value
        for key, value in payload.items()
    }
    headers = {
        name: links["statusQueryGetUri"] if name.lower() == "location" and value == status_url
        else value
        for name, value in headers.items()
    }  # fmt: skip
    return headers, json.dumps(links).encode()
