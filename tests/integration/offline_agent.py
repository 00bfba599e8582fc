"""A real agent on the embedded test driver whose manager is unreachable: all it would send
stays in its outbox, for tests that read what it reports and what its commands do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.main import build_agent


@contextlib.asynccontextmanager
async def offline_agent(report_period_s: float) -> AsyncIterator[NodeAgent]:
    """Node n1, running until the block ends; entered once it has made its first report."""
    overrides = {
        "insecure": True,
        "node_id": "n1",
        "report_period_s": report_period_s,
        "manager": "127.0.0.1:9",
    }
    agent = build_agent(load_config(None, overrides))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        for _ in range(200):
            if agent.last_report is not None:
                break
            await asyncio.sleep(0.05)
        assert agent.last_report is not None, "the agent never reported"
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
