"""The agent settles its memory (footprint.settle) once start-up is over, then on a slow
period, between reports: never before its first report, and it keeps reporting after."""

from __future__ import annotations

import asyncio
import time

import pytest
from vmgrid.agents import model
from vmgrid.agents.node import footprint
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor

PERIOD_S = 0.05
FIRST_S = 0.5
EVERY_S = 1.0


async def _settles(count: int) -> tuple[list[float], list[model.NodeReport | None], NodeAgent]:
    """Runs an agent until it settled `count` times: when (s since start), the agent's last
    report at each settle, and the agent."""
    config = load_config(
        None,
        {"insecure": True, "node_id": "n1", "report_period_s": PERIOD_S, "manager": "127.0.0.1:9"},
    )
    times: list[float] = []
    reports: list[model.NodeReport | None] = []
    started = time.monotonic()

    def settle() -> None:
        times.append(time.monotonic() - started)
        reports.append(agent.last_report)

    agent = NodeAgent(config, LibvirtHypervisor(config.libvirt_uri), settle=settle)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    deadline = started + 60
    while len(times) < count and time.monotonic() < deadline:
        await asyncio.sleep(PERIOD_S)
    last = agent.last_report
    while agent.last_report is last and time.monotonic() < deadline:  # one report after
        await asyncio.sleep(PERIOD_S)
    stop.set()
    await asyncio.wait_for(task, 10)
    return times, reports, agent


def test_memory_is_settled_after_start_up_then_periodically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(footprint, "SETTLE_FIRST_S", FIRST_S)
    monkeypatch.setattr(footprint, "SETTLE_PERIOD_S", EVERY_S)

    times, reports, agent = asyncio.run(_settles(3))

    assert len(times) == 3, f"settled {len(times)} times in 60 s"
    assert times[0] >= FIRST_S  # not before start-up is over
    assert all(later - earlier >= EVERY_S for earlier, later in zip(times, times[1:], strict=False))
    assert reports[0] is not None  # the agent had reported before it first settled
    # and reported between the settles and after the last one
    assert len({id(report) for report in reports}) == 3
    assert agent.last_report is not reports[-1]
