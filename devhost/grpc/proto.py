"""The Durable Task protocol's generated modules, as the `durabletask` package ships them.

One place imports them, so a move inside the SDK (its layout has changed between releases) is a
one-line change; devhost never carries a copy of the `.proto`.
"""

from __future__ import annotations

from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs

__all__ = ["pb", "stubs"]
