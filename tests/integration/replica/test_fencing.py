"""Fencing by leadership term: a real agent process refuses a command whose term is below
the highest it has seen, and a manager whose gate is closed sends nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.errors import NotFound, Unavailable
from vmgrid.lab.replicas import idle_vms, start_test_agent, stop


def test_an_agent_refuses_a_command_from_a_lower_term_and_obeys_a_higher_one(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        config = ClusterConfig(listen="127.0.0.1:0", insecure=True, cluster_id="fenced")
        server = ClusterServer(config)
        manager = server.manager
        manager.term = 7  # the hello ack tells the agent of term 7
        await server.start()
        vms = idle_vms("n1")
        agent = start_test_agent(tmp_path, "n1", [server.address], vms)
        try:
            deadline = time.monotonic() + 20
            while not _known(server, vms[0].uuid):
                assert time.monotonic() < deadline, (tmp_path / "n1.log").read_text()
                await asyncio.sleep(0.1)
            suspend = model.SuspendCommand("suspend-by-term-7", vms[0].uuid)
            obeyed = await manager.send_command("n1", suspend, timeout_s=10)
            assert obeyed.state is model.CommandState.SUCCEEDED, obeyed.message

            manager.term = 5  # what a deposed leader's stream would carry
            resume = model.ResumeCommand("resume-by-term-5", vms[0].uuid)
            refused = await manager.send_command("n1", resume, timeout_s=10)
            assert refused.state is model.CommandState.FAILED
            assert refused.message == (
                "refused: command 'resume-by-term-5' comes with leadership term 5, below "
                "term 7 already seen from a newer leader (stale manager)"
            )
            await asyncio.sleep(1.5)  # three report periods: the refused resume did nothing
            assert manager.state.find_vm(vms[0].uuid)[1].state is model.VmState.PAUSED

            manager.term = 9  # a newer leader is obeyed
            resumed = await manager.send_command(
                "n1", model.ResumeCommand("resume-by-term-9", vms[0].uuid), timeout_s=10
            )
            assert resumed.state is model.CommandState.SUCCEEDED, resumed.message

            manager.leading = lambda: False  # the lease lapsed: the gate closes
            with pytest.raises(Unavailable, match="does not lead its cluster"):
                await manager.send_command(
                    "n1", model.SuspendCommand("after-the-lease", vms[0].uuid), timeout_s=10
                )
        finally:
            stop(agent)
            await server.stop(grace_s=0)

    asyncio.run(scenario())


def test_a_restarted_agent_still_refuses_a_deposed_leader(tmp_path: Path) -> None:
    """The highest term is kept in the agent's state directory: after a restart the agent
    does not take a stream (nor commands) from a leader of a lower term."""

    async def scenario() -> None:
        config = ClusterConfig(listen="127.0.0.1:0", insecure=True, cluster_id="fenced")
        server = ClusterServer(config)
        manager = server.manager
        manager.term = 7
        await server.start()
        vms = idle_vms("n1")
        state = tmp_path / "n1-state"
        state.mkdir()
        agent = start_test_agent(tmp_path, "n1", [server.address], vms, state_dir=state)
        try:
            await _until(lambda: _known(server, vms[0].uuid), tmp_path / "n1.log")
            suspend = model.SuspendCommand("suspend-by-term-7", vms[0].uuid)
            obeyed = await manager.send_command("n1", suspend, timeout_s=10)
            assert obeyed.state is model.CommandState.SUCCEEDED, obeyed.message
            assert (state / "manager-term").read_text() == "7\n"

            agent.kill()  # SIGKILL: nothing is written on the way out
            agent.wait(timeout=10)
            manager.term = 5  # this manager now speaks as a deposed leader still running
            agent = start_test_agent(tmp_path, "n1", [server.address], vms, state_dir=state)
            refusal = "leads with term 5, below term 7 seen: a deposed leader"
            await _until(lambda: refusal in (tmp_path / "n1.log").read_text(), tmp_path / "n1.log")
            # The agent has refused; the manager learns it when it reads the stream's end (a
            # command queued before that would wait for a reconnection, by design).
            await _until(lambda: not manager.has_stream("n1"), tmp_path / "n1.log")
            with pytest.raises(Unavailable, match="node 'n1' has no live agent stream"):
                await manager.send_command(
                    "n1", model.ResumeCommand("resume-by-term-5", vms[0].uuid), timeout_s=10
                )
            assert "connected to manager" not in _since_restart(tmp_path / "n1.log")
        finally:
            stop(agent)
            await server.stop(grace_s=0)

    asyncio.run(scenario())


async def _until(condition: Callable[[], bool], log: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.1)


def _since_restart(log: Path) -> str:
    """The agent's log after its last start."""
    return log.read_text().rpartition("reporting to")[2]


def _known(server: ClusterServer, vm_uuid: str) -> bool:
    try:
        server.manager.state.find_vm(vm_uuid)
    except NotFound:
        return False
    return True
