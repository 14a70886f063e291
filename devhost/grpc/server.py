"""The gRPC endpoint: `SidecarService` on a local address, on the running event loop.

It shares the loop with the engine, so an RPC is a direct call of an engine method and a wait
(`WaitForInstanceCompletion`) is a future on that loop, holding no thread. Plain gRPC, no TLS and
no credential, as the SDK's emulator is reached: bind it to localhost.
"""

from __future__ import annotations

import grpc

from ..host_names import bracketed
from .hubs import HubDirectory
from .proto import stubs
from .service import SidecarService

MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # as the host's HTTP request limit: large payloads pass
STOP_GRACE_SECONDS = 1.0


class GrpcServer:
    """Serves the hubs of `hubs` on `host:port` (port 0 picks a free one; `port` says which)."""

    def __init__(self, hubs: HubDirectory, host: str = "127.0.0.1", port: int = 0) -> None:
        self.hubs = hubs
        self.host = host
        self.port = port
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        """What a durabletask client or worker takes as `host_address`."""
        return f"{bracketed(self.host)}:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a port taken by another process is an error
            ]
        )
        stubs.add_TaskHubSidecarServiceServicer_to_server(SidecarService(self.hubs), server)
        try:
            bound = server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio raises where older versions returned 0
            bound = 0
        if bound == 0:
            raise OSError(f"cannot listen for gRPC on {self.address} (is it in use?)")
        self.port = bound
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Streams end (workers see the sidecar go and reconnect later); calls get the grace."""
        if self._server is not None:
            await self._server.stop(STOP_GRACE_SECONDS)
            self._server = None
