"""An agent that knows several manager replicas backs off while none answers for long, and
still reaches a manager that appears within its heartbeat timeout.

The agent's real node link (``NodeLink``) against a real cluster manager's gRPC server, both
in the test's event loop; the second replica's address has nothing listening."""

from __future__ import annotations

import asyncio
import time

from vmgrid.agents import model
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.common.redial import REPLICA_BACKOFF_CAP_S, replica_delay_s
from vmgrid.agents.node.rpc import NodeLink, Outbox
from vmgrid.bench.ports import free_ports
from waiting import time_until

HEARTBEAT_TIMEOUT_MS = 4000


def _hello() -> model.NodeHello:
    identity = model.NodeIdentity(node_id="n1", hostname="n1", migration_uri="")
    return model.NodeHello(identity, model.NodeCapacity(4000, 2**33, 10**9))


async def _manager(port: int) -> ClusterServer:
    config = ClusterConfig(
        listen=f"127.0.0.1:{port}",
        insecure=True,
        report_period_ms=1000,
        heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS,
    )
    server = ClusterServer(config)
    await server.start()
    return server


def test_the_delay_is_short_during_a_failover_and_grows_to_half_a_heartbeat_timeout() -> None:
    for _ in range(200):
        assert replica_delay_s(0.0, 10.0) <= REPLICA_BACKOFF_CAP_S
        assert replica_delay_s(9.9, 10.0) <= REPLICA_BACKOFF_CAP_S
        assert REPLICA_BACKOFF_CAP_S / 2 <= replica_delay_s(11.0, 10.0) <= 2 * REPLICA_BACKOFF_CAP_S
        assert 2.5 <= replica_delay_s(60.0, 10.0) <= 5.0
        assert 2.5 <= replica_delay_s(3600.0, 10.0) <= 5.0


def test_an_agent_dials_less_during_a_long_outage_and_reaches_a_returning_manager() -> None:
    asyncio.run(asyncio.wait_for(_outage(), 60))


async def _outage() -> None:
    port, other = free_ports(2)
    targets = f"127.0.0.1:{port},127.0.0.1:{other}"
    manager = await _manager(port)
    link = NodeLink(targets, None, _hello, Outbox(), lambda _: None, 0.5, lambda: "")
    stop = asyncio.Event()
    running = asyncio.create_task(link.run(stop))
    try:
        await time_until(lambda: link.connected, 10)
        await manager.stop(grace_s=0)
        outage = time.monotonic()
        await time_until(lambda: not link.connected, 10)
        first = link.dials
        await asyncio.sleep(4.0)  # the first heartbeat timeout: a failover, dials stay quick
        fast = link.dials - first
        await asyncio.sleep(4.0)
        middle = link.dials
        await asyncio.sleep(4.0)  # 8-12 s into the outage: the ceiling is 2 s
        slow = link.dials - middle
        print(f"dials in the first 4 s of the outage: {fast}; from 8 to 12 s: {slow}")
        # a round tries both addresses, then waits: at most 0.5 s within the heartbeat timeout
        assert fast >= 10  # 8 rounds or more (dials to loopback fail at once)
        assert slow <= 10  # rounds at least 1 s apart; 0.5 s apart would be 16 dials or more

        manager = await _manager(port)
        back = await time_until(lambda: link.connected, HEARTBEAT_TIMEOUT_MS / 1000)
        print(f"reconnected {back:.2f} s after the manager came back "
              f"({time.monotonic() - outage:.1f} s into the outage)")  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await manager.stop(grace_s=0)
