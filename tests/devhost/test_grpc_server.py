"""The gRPC endpoint's address: a port in use is a sentence, an IPv6 address is bracketed."""

import asyncio
import socket

import pytest
from durabletask import client

from devhost.grpc.sidecar import Sidecar
from devhost.store.memory import MemoryStore


def test_a_port_in_use_is_a_sentence_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sidecar = Sidecar(lambda _hub: MemoryStore(), port=port)
        with pytest.raises(OSError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            asyncio.run(sidecar.start())


def test_a_sidecar_on_ipv6_loopback_is_reached_at_its_address():
    async def serve_and_ask() -> None:
        sidecar = Sidecar(lambda _hub: MemoryStore(), host="::1")
        await sidecar.start()
        try:
            assert sidecar.address.startswith("[::1]:")
            c = client.TaskHubGrpcClient(host_address=sidecar.address)
            try:
                state = await asyncio.to_thread(c.get_orchestration_state, "nobody")
            finally:
                c.close()
            assert state is None
        finally:
            await sidecar.stop()

    asyncio.run(serve_and_ask())
