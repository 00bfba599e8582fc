"""The agent's periodic libvirt calls run in one thread of its own; commands run beside it.

asyncio.to_thread would start another default-executor worker whenever none is idle, and each
worker keeps its own malloc arena; the agent instead samples, connects and closes in one
dedicated thread (``vmgrid-libvirt``), while a command's libvirt calls still go to asyncio's
default executor, so a long command never holds a report back.
"""

from __future__ import annotations

import asyncio
import threading
import time

from offline_agent import offline_agent
from vmgrid.agents import model
from vmgrid.agents.node.agent import NodeAgent

PERIOD_S = 0.05


def _started_since(before: set[threading.Thread]) -> list[str]:
    return sorted(thread.name for thread in threading.enumerate() if thread not in before)


async def _reports(agent: NodeAgent, count: int) -> None:
    seen = {id(agent.last_report)}
    deadline = time.monotonic() + 30
    while len(seen) <= count:
        assert time.monotonic() < deadline, f"fewer than {count} reports in 30 s"
        await asyncio.sleep(PERIOD_S / 2)
        seen.add(id(agent.last_report))


async def _threads_started(command: model.Command | None) -> list[str]:
    """Names of the threads started while an agent reports 10 times (running `command`)."""
    before = set(threading.enumerate())
    async with offline_agent(PERIOD_S) as agent:
        if command is not None:
            assert agent.actuators.submit(command).state is model.CommandState.ACCEPTED
        await _reports(agent, 10)
        started = _started_since(before)
        await agent.actuators.drain()
        if command is not None:  # answered from the result cache: it ran, and succeeded
            assert agent.actuators.submit(command).state is model.CommandState.SUCCEEDED
    return started


def test_reports_sample_libvirt_in_one_dedicated_thread() -> None:
    started = asyncio.run(_threads_started(None))

    assert [name for name in started if name.startswith("vmgrid-libvirt")] == ["vmgrid-libvirt_0"]
    assert [name for name in started if name.startswith("asyncio_")] == []


def test_a_command_runs_in_the_default_executor_while_reports_go_on() -> None:
    started = asyncio.run(_threads_started(model.SuspendCommand("c1", "test")))

    assert [name for name in started if name.startswith("vmgrid-libvirt")] == ["vmgrid-libvirt_0"]
    assert [name for name in started if name.startswith("asyncio_")] != []
