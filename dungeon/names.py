"""Player names: a security boundary, since a name is used in keys, instance ids and URLs.

The rule: after trimming (and Unicode NFC normalisation, so "Zoë" typed two ways is one name),
1 to 32 characters, each a Unicode letter, a combining mark after a letter, a decimal digit,
a space, `-`, `_` or `.`; "." and ".." are refused (a browser or proxy rewrites them as path
segments). Two names that differ only in case are the same player: `player_key` is the one
spelling every table key and instance id is made from; the name as first typed is kept for
the story.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 32
PUNCTUATION = " -_."


class InvalidNameError(ValueError):
    """A name that breaks the rules; the message is one sentence for the player."""


def _allowed(previous: str, char: str) -> bool:
    category = unicodedata.category(char)
    if category.startswith("L") or category == "Nd" or char in PUNCTUATION:
        return True
    return category.startswith("M") and bool(previous) and not previous.isspace()


def validate_name(value: object) -> str:
    """The trimmed, NFC-normalised name, or InvalidNameError saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidNameError("The name must be a string.")
    name = unicodedata.normalize("NFC", value.strip())
    if not name:
        raise InvalidNameError("The name must not be empty.")
    if len(name) > MAX_LENGTH:
        raise InvalidNameError(f"The name must be at most {MAX_LENGTH} characters long.")
    if name in (".", ".."):
        raise InvalidNameError("The name must not be '.' or '..'.")
    previous = ""
    for char in name:
        if not _allowed(previous, char):
            raise InvalidNameError(
                f"The name '{name}' may contain only letters, digits, spaces "
                "and the characters . _ -"
            )
        previous = char
    return name


def player_key(name: str) -> str:
    """The case-free spelling of a valid name, used in every key and instance id."""
    return name.lower()
