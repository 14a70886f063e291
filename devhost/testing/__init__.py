"""Testing Durable Functions apps without mocks: the harness, its virtual clock, replay checks.

`DurableHarness` runs an app in-process on the memory store and a virtual clock; the pytest
plugin (`devhost.testing.plugin`, registered on `pip install`) hands it to tests as the
`durable_host` fixture. `SidecarHarness` (fixture `durable_sidecar`) does the same for apps
written with the Durable Task SDK: its gRPC sidecar, for their workers and clients.
"""

from ..engine.replay_check import HistoryError, ReplayResult
from .harness import ActivityError, DurableHarness, EntityOperationError
from .sidecar import SidecarHarness
from .virtual_clock import VirtualClock

__all__ = [
    "ActivityError",
    "DurableHarness",
    "EntityOperationError",
    "HistoryError",
    "ReplayResult",
    "SidecarHarness",
    "VirtualClock",
]
