"""Player names: a security boundary, since a name is used verbatim in keys, ids and URLs."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9 ._-]{1,32}")


class InvalidNameError(ValueError):
    """A name that breaks the rules; the message is one sentence for the player."""


def validate_name(value: object) -> str:
    """The trimmed name, or InvalidNameError saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidNameError("The name must be a string.")
    name = value.strip()
    if not name:
        raise InvalidNameError("The name must not be empty.")
    if len(name) > 32:
        raise InvalidNameError("The name must be at most 32 characters long.")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidNameError(
            f"The name '{name}' may contain only letters, digits, spaces and the characters . _ -"
        )
    return name
