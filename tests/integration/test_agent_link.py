"""A real `vmgrid-agent` process on the libvirt test driver against a real cluster manager.

The manager runs in the test's event loop (so that the test can call ``send_command``); the
agent is a separate process, as in production, dialling it over loopback gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import NotFound
from vmgrid.agents.node.testnode import SimVm, node_xml

pytestmark = pytest.mark.slow

# A long report period: a VM change seen within a few seconds can only have come from
# libvirt's lifecycle event, not from the periodic report.
LONG_PERIOD_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_manager(port: int = 0, timeout_ms: int = 10_000) -> AsyncIterator[ClusterServer]:
    config = ClusterConfig(
        listen=f"127.0.0.1:{port}",
        insecure=True,
        report_period_ms=1000,
        heartbeat_timeout_ms=timeout_ms,
    )
    server = ClusterServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace_s=0)


def start_agent(
    address: str, uri: str, log: Path, node_id: str = "n1", period: float = LONG_PERIOD_S
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "vmgrid.agents.node.main",
        "--insecure",
        "--manager",
        address,
        "--node-id",
        node_id,
        "--libvirt-uri",
        uri,
        "--period",
        str(period),
        "--heartbeat",
        "0.5",
    ]
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=sink)


def stop_agent(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


async def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Poll until ``check`` holds; fail with the check's name after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(NotFound):
            if check():
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{check.__name__} did not hold within {timeout_s} s")


def vm_state(server: ClusterServer, vm_uuid: str) -> model.VmState | None:
    try:
        return server.manager.state.find_vm(vm_uuid)[1].state
    except NotFound:
        return None


@pytest.fixture
def node_uri(tmp_path: Path) -> tuple[str, SimVm, SimVm]:
    running, stopped = SimVm("it-running", vcpus=2), SimVm("it-stopped", running=False)
    path = tmp_path / "node.xml"
    path.write_text(node_xml([running, stopped], cpus=8))
    return f"test://{path.resolve()}", running, stopped


def test_started_and_destroyed_vms_show_in_the_manager_without_waiting_a_period(
    tmp_path: Path, node_uri: tuple[str, SimVm, SimVm]
) -> None:
    uri, running, stopped = node_uri

    async def scenario() -> None:
        async with running_manager() as server:
            agent = start_agent(server.address, uri, tmp_path / "agent.log")
            try:

                def node_reported_its_vms() -> bool:
                    return vm_state(server, stopped.uuid) is model.VmState.SHUT_OFF

                await eventually(node_reported_its_vms)
                node = server.manager.state.view("n1")
                assert node.identity.simulated and node.capacity.cpu_millicores == 8000
                assert vm_state(server, running.uuid) is model.VmState.RUNNING

                start = model.StartCommand("start-1", stopped.uuid)
                result = await server.manager.send_command("n1", start, timeout_s=10)
                assert result.state is model.CommandState.SUCCEEDED, result.message

                def started_vm_is_running() -> bool:
                    return vm_state(server, stopped.uuid) is model.VmState.RUNNING

                await eventually(started_vm_is_running, timeout_s=LONG_PERIOD_S / 3)

                destroy = model.DestroyCommand("destroy-1", running.uuid)
                result = await server.manager.send_command("n1", destroy, timeout_s=10)
                assert result.state is model.CommandState.SUCCEEDED, result.message

                def destroyed_vm_is_off() -> bool:
                    return vm_state(server, running.uuid) is model.VmState.SHUT_OFF

                await eventually(destroyed_vm_is_off, timeout_s=LONG_PERIOD_S / 3)
            finally:
                assert stop_agent(agent) == 0

    asyncio.run(scenario())


def test_commands_are_idempotent_and_unsupported_ones_fail_clearly(
    tmp_path: Path, node_uri: tuple[str, SimVm, SimVm]
) -> None:
    uri, running, _stopped = node_uri

    async def scenario() -> None:
        async with running_manager() as server:
            agent = start_agent(server.address, uri, tmp_path / "agent.log")
            try:
                await eventually(lambda: server.manager.state.view("n1").usage is not None)
                send = server.manager.send_command
                again = await send("n1", model.StartCommand("s1", running.uuid), timeout_s=10)
                assert again.state is model.CommandState.SUCCEEDED
                assert again.message == "already running"
                migrate = model.MigrateCommand("m1", running.uuid, "test:///default")
                failed = await send("n1", migrate, timeout_s=10)
                assert failed.state is model.CommandState.FAILED
                assert "simulated nodes migrate through the manager" in failed.message
                missing = await send("n1", model.StartCommand("s2", "nope"), timeout_s=10)
                assert missing.state is model.CommandState.FAILED
                assert "'nope'" in missing.message
                assert agent.poll() is None  # failures cost a result, never the agent
            finally:
                assert stop_agent(agent) == 0

    asyncio.run(scenario())


def test_killed_agent_is_declared_lost_and_returns_when_restarted(
    tmp_path: Path, node_uri: tuple[str, SimVm, SimVm]
) -> None:
    uri = node_uri[0]

    async def scenario() -> None:
        async with running_manager(timeout_ms=1500) as server:
            status = server.manager.state.node_status
            agent = start_agent(server.address, uri, tmp_path / "agent.log")
            await eventually(lambda: status("n1") is NodeStatus.CONNECTED)
            agent.kill()
            agent.wait(timeout=10)
            await eventually(lambda: status("n1") is NodeStatus.LOST)
            agent = start_agent(server.address, uri, tmp_path / "agent.log")
            try:
                await eventually(lambda: status("n1") is NodeStatus.CONNECTED)
            finally:
                assert stop_agent(agent) == 0

    asyncio.run(scenario())


def test_agent_redials_a_restarted_manager(
    tmp_path: Path, node_uri: tuple[str, SimVm, SimVm]
) -> None:
    uri = node_uri[0]
    port = _free_port()

    async def scenario() -> None:
        async with running_manager(port) as server:
            agent = start_agent(server.address, uri, tmp_path / "agent.log")
            await eventually(lambda: server.manager.state.node_status("n1") is NodeStatus.CONNECTED)
        try:
            async with running_manager(port) as fresh:
                await eventually(
                    lambda: fresh.manager.state.view("n1").usage is not None, timeout_s=30
                )
        finally:
            assert stop_agent(agent) == 0

    asyncio.run(scenario())


def test_unreachable_libvirt_is_a_clear_error_and_the_agent_keeps_running(tmp_path: Path) -> None:
    uri = f"qemu+tcp://127.0.0.1:{_free_port()}/system"
    log = tmp_path / "agent.log"

    async def scenario() -> None:
        async with running_manager() as server:
            agent = start_agent(server.address, uri, log, node_id="broken")
            try:
                # It still reaches the manager (heartbeats flagged degraded), sends no report.
                await eventually(
                    lambda: server.manager.state.node_status("broken") is NodeStatus.CONNECTED
                )
                await asyncio.sleep(1.0)
                assert agent.poll() is None
                assert server.manager.state.view("broken").usage is None
            finally:
                assert stop_agent(agent) == 0

    asyncio.run(scenario())
    text = log.read_text()
    assert f"cannot reach libvirt at {uri!r}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--period", "0"], "report_period_s: 0.0 is not a number of seconds"),
        (["--manager", "nohost"], "manager: 'nohost' is not HOST:PORT"),
        (["--libvirt-uri", "test:///missing.xml"], "names no node XML file"),
        ([], "tls_dir is not set; pass --tls-dir DIR, or --insecure"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(flags: list[str], message: str) -> None:
    insecure = ["--insecure"] if flags else []
    done = subprocess.run(
        [sys.executable, "-m", "vmgrid.agents.node.main", *insecure, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
