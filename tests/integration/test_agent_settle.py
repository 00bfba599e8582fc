"""The agent settles its memory (footprint.settle) once start-up is over, then on a slow
period, between reports: never before its first reports, and it keeps reporting after."""

from __future__ import annotations

import asyncio
import time

import pytest
from vmgrid.agents.node import agent as agent_module
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor

PERIOD_S = 0.05


async def _run_counting_settles(seconds: float) -> tuple[list[float], list[int], int]:
    """(settle times since start, reports seen at each settle, reports seen in all)."""
    config = load_config(
        None,
        {"insecure": True, "node_id": "n1", "report_period_s": PERIOD_S, "manager": "127.0.0.1:9"},
    )
    settles: list[float] = []
    reports_at_settle: list[int] = []
    started = time.monotonic()
    reports = 0

    def settle() -> None:
        settles.append(time.monotonic() - started)
        reports_at_settle.append(reports)

    agent = NodeAgent(config, LibvirtHypervisor(config.libvirt_uri), settle=settle)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    seen = set()
    deadline = started + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(PERIOD_S / 2)
        if agent.last_report is not None and id(agent.last_report) not in seen:
            seen.add(id(agent.last_report))
            reports = len(seen)
    stop.set()
    await asyncio.wait_for(task, 10)
    return settles, reports_at_settle, reports


def test_memory_is_settled_after_start_up_then_periodically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent_module, "SETTLE_FIRST_S", 0.5)
    monkeypatch.setattr(agent_module, "SETTLE_PERIOD_S", 1.0)

    settles, reports_at_settle, reports = asyncio.run(_run_counting_settles(2.9))

    assert len(settles) == 3  # at 0.5 s, then 1.5 s and 2.5 s
    assert 0.5 <= settles[0] < 1.4
    assert all(
        1.0 <= later - earlier < 1.9 for earlier, later in zip(settles, settles[1:], strict=False)
    )
    assert reports_at_settle[0] >= 1  # start-up (its first reports) came first
    # and reporting went on between and after the settles
    assert reports_at_settle == sorted(set(reports_at_settle))
    assert reports > reports_at_settle[-1]
