"""gRPC sets SO_REUSEPORT by default, so a second server could bind the port a first holds and
split the agents between them; vmgrid's servers turn it off, and a bind that fails is one
ConfigError line naming the address (this bypasses the start-up check that usually says it
first)."""

from __future__ import annotations

import asyncio

import pytest
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer


def test_a_second_server_cannot_bind_the_port_the_first_holds() -> None:
    async def scenario() -> None:
        first = ClusterServer(ClusterConfig(listen="127.0.0.1:0", insecure=True).validate())
        address = await first.start()
        try:
            second = ClusterServer(ClusterConfig(listen=address, insecure=True).validate())
            with pytest.raises(ConfigError, match=f"listen: cannot bind '{address}'"):
                await second.start()
            grid = CoordinatorServer(
                CoordinatorConfig(listen=address, insecure=True, state_db=":memory:").validate()
            )
            with pytest.raises(ConfigError, match=f"listen: cannot bind '{address}'"):
                await grid.start()
            await grid.stop(0)
        finally:
            await first.stop(0)

    asyncio.run(scenario())
