"""A real agent (libvirt's test driver) reports at its node's phase of the period, and a report
woken in between (a manager's hello ack) does not move the later ones (cadence.py): after a
manager restart its agents stay spread over the period instead of reporting in step."""

from __future__ import annotations

import asyncio
import statistics
import time

from vmgrid.agents import model
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.cadence import report_phase_s
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor

PERIOD_S = 0.4


def _off_phase(t: float, phase: float) -> float:
    d = (t - phase) % PERIOD_S
    return min(d, PERIOD_S - d)


async def _run() -> tuple[list[float], float, float]:
    """Report times (monotonic) of an agent woken once half a period off its phase; the wake's
    time and the node's phase."""
    config = load_config(
        None,
        {"insecure": True, "node_id": "n1", "report_period_s": PERIOD_S, "manager": "127.0.0.1:9"},
    )
    agent = NodeAgent(config, LibvirtHypervisor(config.libvirt_uri))
    times: list[float] = []
    agent.report_listeners.append(lambda _s: times.append(time.monotonic()))
    phase = report_phase_s("n1", PERIOD_S)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(1.2)
    now = time.monotonic()
    await asyncio.sleep((phase + PERIOD_S / 2 - now) % PERIOD_S)  # half a period off phase
    woken = time.monotonic()
    agent._on_incoming(model.HelloAck("c1", "test", 400, 4000))  # as on a reconnection
    await asyncio.sleep(2.2)
    stop.set()
    await asyncio.wait_for(task, 10)
    return times, woken, phase


def test_regular_reports_stay_on_the_node_phase_after_a_wake() -> None:
    times, woken, phase = asyncio.run(_run())
    before = [t for t in times[1:] if t < woken]  # times[0]: the report at start
    assert before and statistics.median(_off_phase(t, phase) for t in before) < 0.08
    assert any(woken <= t < woken + 0.15 for t in times), "no report right after the wake"
    after = [t for t in times if t > woken + 0.15]
    assert len(after) >= 4
    # counted from the wake, they would sit half a period (0.2 s) off the phase
    assert statistics.median(_off_phase(t, phase) for t in after) < 0.08, after
