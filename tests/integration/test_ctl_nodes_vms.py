"""`vmgridctl nodes` and `vmgridctl vms` against a real manager fed by a simulated agent stream.

The manager and the hand-driven agent streams run on a background event loop; main() runs in
the test thread exactly as from the shell. JSON and table output, the filters, and the exit
codes of an unreachable address (3) and a bad flag (2).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import grpc.aio
import pytest
from node_link_harness import StreamAgent
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.v1 import common_pb2

T = TypeVar("T")


class Background:
    """A manager with two streamed agents: n1 (web-1 running, db-1 paused), n2 (web-2)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: ClusterServer | None = None
        self.channel: grpc.aio.Channel | None = None
        self.agents: list[StreamAgent] = []
        self.address = self.run(self._start())

    def run(self, coro: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(30)

    async def _start(self) -> str:
        config = ClusterConfig(
            cluster_id="ctl", listen="127.0.0.1:0", insecure=True, heartbeat_timeout_ms=60_000
        )
        self.server = ClusterServer(config.validate())
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(self.server.address)
        n1, n2 = StreamAgent(self.channel, "n1"), StreamAgent(self.channel, "n2")
        self.agents = [n1, n2]
        await n1.hello()
        await n2.hello()
        report = n1.report_msg("web-1", "db-1")
        report.vms[1].state = common_pb2.VM_STATE_PAUSED
        n1.send(report=report)
        n2.report("web-2")
        while len(self.server.manager.state.views()) < 2 or _vm_count(self.server) < 3:
            await asyncio.sleep(0.02)
        return self.server.address

    def stop(self) -> None:
        async def stop() -> None:
            for agent in self.agents:
                agent.close()
            if self.channel is not None:
                await self.channel.close()
            if self.server is not None:
                await self.server.stop(grace_s=0)

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _vm_count(server: ClusterServer) -> int:
    return sum(len(view.vms) for view in server.manager.state.views())


@pytest.fixture(scope="module")
def manager() -> Iterator[Background]:
    background = Background()
    try:
        yield background
    finally:
        background.stop()


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config file


def ctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = vmgridctl(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ctl_json(manager: Background, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = ctl(
        capsys, *argv, "--cluster", manager.address, "--insecure", "--output", "json"
    )
    assert code == 0, err
    return json.loads(out)


def test_nodes_json_lists_both_connected_simulated_nodes(
    manager: Background, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = ctl_json(manager, capsys, "nodes")["nodes"]
    assert [(n["node_id"], n["status"], n["vm_count"]) for n in nodes] == [
        ("n1", "NODE_STATUS_CONNECTED", 2),
        ("n2", "NODE_STATUS_CONNECTED", 1),
    ]
    assert all(n["simulated"] for n in nodes)


def test_nodes_table_has_a_header_and_one_row_per_node(
    manager: Background, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ctl(capsys, "nodes", "--cluster", manager.address, "--insecure")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "NODE", "STATUS", "VMS", "CPU_MILLICORES", "MEM_GIB", "SIMULATED", "HOST", "DEGRADED"
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[2], r[5]) for r in rows] == [
        ("n1", "connected", "2", "yes"),
        ("n2", "connected", "1", "yes"),
    ]
    assert rows[0][3] == "100/4000"  # host CPU used / capacity, millicores
    assert [r[7] for r in rows] == ["-", "-"]  # healthy: no degraded reason


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ((), ["db-1", "web-1", "web-2"]),
        (("--node", "n1"), ["db-1", "web-1"]),
        (("--state", "paused"), ["db-1"]),
        (("--state", "running", "--state", "paused", "--node", "n2"), ["web-2"]),
        (("--name", "web"), ["web-1", "web-2"]),
    ],
)
def test_vms_json_filters_by_node_state_and_name(
    manager: Background,
    capsys: pytest.CaptureFixture[str],
    filters: tuple[str, ...],
    names: list[str],
) -> None:
    vms = ctl_json(manager, capsys, "vms", *filters).get("vms", [])
    assert sorted(v["usage"]["name"] for v in vms) == names


def test_vms_table_shows_state_node_and_memory(
    manager: Background, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ctl(capsys, "vms", "--node", "n1", "--cluster", manager.address, "--insecure")
    assert code == 0, err
    header, *rows = [line.split() for line in out.splitlines()]
    assert header == [
        "UUID", "NAME", "NODE", "STATE", "VCPUS", "CPU_MILLICORES", "MEM_MIB", "SIMULATED"
    ]  # fmt: skip
    assert sorted(rows) == [
        ["db-1", "db-1", "n1", "paused", "1", "250", "256", "yes"],
        ["web-1", "web-1", "n1", "running", "1", "250", "256", "yes"],
    ]


def test_vms_on_an_unknown_node_exits_4_naming_it(
    manager: Background, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ctl(capsys, "vms", "--node", "n9", "--cluster", manager.address, "--insecure")
    assert code == 4 and out == ""
    assert err.strip() == (
        f"vmgridctl vms: {manager.address}: NOT_FOUND: node 'n9' is not known to cluster 'ctl'"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.parametrize("command", ["nodes", "vms"])
def test_unreachable_manager_exits_3_with_one_line_naming_the_address(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    code, out, err = ctl(capsys, command, "--cluster", address, "--insecure", "--timeout", "2")
    assert code == 3 and out == ""
    assert err.startswith("vmgridctl ") and address in err and "unreachable" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["vms", "--state", "sleeping"], "'sleeping'"),
        (["nodes", "--output", "yaml"], "'yaml'"),
        (["nodes", "--colour"], "--colour"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_or_value(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        vmgridctl(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "usage: vmgridctl" in err


def test_a_node_the_manager_powered_off_is_listed_as_such(
    capsys: pytest.CaptureFixture[str],
) -> None:
    background = Background()
    try:

        async def power_off() -> None:
            assert background.server is not None
            background.server.manager.state.mark_powered_off("n2")

        background.run(power_off())
        code, out, err = ctl(capsys, "nodes", "--cluster", background.address, "--insecure")
        assert code == 0, err
        rows = [line.split() for line in out.splitlines()[1:]]
        assert [(r[0], r[1]) for r in rows] == [("n1", "connected"), ("n2", "powered_off")]
    finally:
        background.stop()
