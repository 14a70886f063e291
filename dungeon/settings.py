"""Game settings from the environment (app settings), with the defaults of the game contract."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


class SettingsError(ValueError):
    """A setting that is not a positive number."""


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return value


@dataclass(frozen=True)
class GameSettings:
    confirm_seconds: float = 120
    monitor_interval_seconds: float = 20
    monitor_lifetime_minutes: float = 60
    seed: str | None = None

    @classmethod
    def from_environment(cls) -> GameSettings:
        return cls(
            confirm_seconds=_positive("DUNGEON_CONFIRM_SECONDS", 120),
            monitor_interval_seconds=_positive("DUNGEON_MONITOR_INTERVAL_SECONDS", 20),
            monitor_lifetime_minutes=_positive("DUNGEON_MONITOR_LIFETIME_MINUTES", 60),
            seed=os.environ.get("DUNGEON_SEED") or None,
        )

    def to_input(self) -> dict:
        return asdict(self)


def storage_connection() -> str:
    connection = os.environ.get("AzureWebJobsStorage")
    if not connection:
        raise SettingsError("AzureWebJobsStorage is not set")
    return connection
