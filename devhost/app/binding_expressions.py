"""Binding expressions: `{name}` from the trigger's data, `%SETTING%` from app settings.

The host resolves `{...}` against the trigger's binding data (route parameters, a queue
message's metadata, the blob path's parts, the properties of a JSON payload), plus the system
values `{rand-guid}` and `{datetime}`; names match case-insensitively.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

TOKEN = re.compile(r"\{([^{}]+)\}")
SETTING = re.compile(r"%([^%]+)%")


class BindingExpressionError(Exception):
    """An expression names data the trigger did not provide."""


def json_properties(value: Any) -> dict[str, Any]:
    """A JSON object payload's top-level properties, which bindings may name."""
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def resolve(template: str, data: dict[str, Any]) -> str:
    """Fill a path, queue or key template; an unknown `{name}` is an error, not an empty string."""

    def token(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key.lower() in ("rand-guid", "sys.randguid"):
            return str(uuid.uuid4())
        if key.lower() in ("datetime", "sys.utcnow"):
            return datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        value: Any = data
        for part in key.lower().split("."):
            fields = _lowered(value) if isinstance(value, dict) else {}
            if part not in fields:
                raise BindingExpressionError(f"no value for {{{key}}} in {template!r}")
            value = fields[part]
        return str(value)

    return TOKEN.sub(token, expand_settings(template))


def _lowered(fields: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in fields.items()}


def expand_settings(value: str) -> str:
    """`%NAME%` becomes the app setting NAME, as in schedules, queue names and paths."""
    return SETTING.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)
