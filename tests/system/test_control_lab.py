"""The closed control loop on the real KVM lab: plans executed by the PlanExecutor.

One agent per lab host (declaring its own CPU share and counting only its guests' CPU, since the
lab hosts share one machine) dials a ClusterRuntime: in-process for the plan-level tests, real
`vmgrid-agent` and `vmgrid-cluster` processes (journal in a file) for overload relief and the
manager killed with SIGKILL mid-plan. Placement is checked through libvirt on every lab host
directly, not only through the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import libvirt
import pytest
from vmgrid.agents.cluster.act.journal import PlanState
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import AgentConfig
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.bench.lab_cluster import LabCluster
from vmgrid.lab import Lab, LabHost
from vmgrid.solver.plan import Action, ActionKind

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(240)]

GuestFactory = Callable[..., object]


def running_on_lab(lab: Lab) -> Counter[tuple[str, str]]:
    """(guest name, host) -> 1 for every running guest, read from each host's libvirt."""
    seen: Counter[tuple[str, str]] = Counter()
    for host in lab.hosts():
        with contextlib.closing(host.connect()) as conn:
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                seen[(dom.name(), host.name)] += 1
    return seen


def hosts_of(lab: Lab, name: str) -> list[str]:
    return [h for (n, h) in running_on_lab(lab) if n == name]


@contextlib.asynccontextmanager
async def runtime(
    hosts: list[LabHost], control: ControlConfig, decisions: bool = True
) -> AsyncIterator[ClusterRuntime]:
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=1000, heartbeat_timeout_ms=10_000
    )
    options = RuntimeOptions(control=control, decisions=decisions)
    rt = ClusterRuntime(config, options)
    await rt.start()
    stop = asyncio.Event()
    tasks = []
    try:
        for host in hosts:
            agent_config = AgentConfig(
                node_id=host.name,
                libvirt_uri=host.uri,
                manager=rt.address,
                insecure=True,
                report_period_s=1.0,
                heartbeat_period_s=0.5,
                migration_uri=host.migration_uri,
                peer_uri=host.uri,
                cpu_millicores=2000,
                host_cpu_from_guests=True,
            )
            agent = NodeAgent(agent_config, LibvirtHypervisor(host.uri))
            tasks.append(asyncio.create_task(agent.run(stop)))
        await eventually(lambda: all(_reported(rt, h.name) for h in hosts), 60)
        for host in hosts:
            identity = rt.manager.state.view(host.name).identity
            assert identity.peer_uri == host.uri, "the manager must learn each node's peer URI"
        yield rt
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await rt.stop(grace_s=0)


def _reported(rt: ClusterRuntime, node_id: str) -> bool:
    state = rt.manager.state
    return node_id in state.node_ids() and state.view(node_id).usage is not None


async def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_running_guest_live_migrates_through_the_executor(
    lab: Lab, lab_guests: GuestFactory
) -> None:
    host1, host2 = lab.hosts()[:2]
    dom = lab_guests(host1, "ctl-migrate", "spin", memory_mib=64)
    vm = str(dom.UUIDString())  # type: ignore[attr-defined]

    async def scenario() -> None:
        async with runtime([host1, host2], ControlConfig(), decisions=False) as rt:
            action = Action(0, ActionKind.MIGRATE, vm, "host1", "host2", 0, 2, "system test")
            report = await rt.executor.run("lab-plan-1", [action], origin="test")
            assert report.state is PlanState.SUCCEEDED, report.messages
            assert hosts_of(lab, "ctl-migrate") == ["host2"]

    asyncio.run(scenario())


def test_idle_guests_on_three_hosts_are_consolidated_automatically(
    lab: Lab, lab_guests: GuestFactory
) -> None:
    hosts = lab.hosts()[:3]
    names = [f"ctl-idle{i}" for i in range(3)]
    for host, name in zip(hosts, names, strict=True):
        lab_guests(host, name, "idle", memory_mib=64)
    control = ControlConfig(
        period_s=1.0, hold_s=3.0, cooldown_s=0.0, automation=AutomationLevel.AUTOMATIC
    )

    async def scenario() -> None:
        async with runtime(hosts, control):

            def consolidated() -> bool:
                seen = running_on_lab(lab)
                ours = {(n, h): c for (n, h), c in seen.items() if n in names}
                return len(ours) == 3 and len({h for (_, h) in ours}) < 3

            await eventually(consolidated, 120)
        seen = running_on_lab(lab)
        assert sorted(n for (n, _) in seen if n in names) == sorted(names)  # once each

    asyncio.run(scenario())


def test_a_drained_host_is_emptied_and_its_guest_comes_back_on_undrain(
    lab: Lab, lab_guests: GuestFactory
) -> None:
    host1, host2 = lab.hosts()[:2]
    lab_guests(host1, "ctl-drain", "idle", memory_mib=64)
    control = ControlConfig(period_s=1.0, hold_s=1000.0, automation=AutomationLevel.MANUAL)

    async def scenario() -> None:
        async with runtime([host1, host2], control) as rt:
            rt.loop.drain("host1")
            await eventually(lambda: hosts_of(lab, "ctl-drain") == ["host2"], 90)
            await eventually(lambda: rt.loop.running is None, 30)
            rt.loop.undrain("host1")
            await eventually(lambda: hosts_of(lab, "ctl-drain") == ["host1"], 90)

    asyncio.run(scenario())


@pytest.fixture
def lab_cluster(lab: Lab, tmp_path: Path) -> Iterator[Callable[..., LabCluster]]:
    """`make(flags, cpu_millicores)`: a `vmgrid-cluster` process and one `vmgrid-agent` process
    per lab host, all stopped (by pid) after the test."""
    made: list[LabCluster] = []

    def make(flags: list[str], cpu_millicores: int = 2000) -> LabCluster:
        cluster = LabCluster(
            lab, lab.hosts(), tmp_path / f"procs{len(made)}", flags, cpu_millicores
        )
        made.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


async def _until(check: Callable[[], bool], timeout_s: float) -> None:
    await eventually(check, timeout_s)


def test_overload_is_relieved_when_guests_spin(
    lab_guests: GuestFactory, lab_cluster: Callable[..., LabCluster]
) -> None:
    flags = ["--automation=automatic", "--period-s=1", "--hold-s=2", "--cooldown-s=5"]
    cluster = lab_cluster(flags, cpu_millicores=1000)
    host1 = cluster.hosts[0]
    names = ["ctl-hot0", "ctl-hot1"]
    for name in names:
        lab_guests(host1, name, "spin", memory_mib=64)

    def spread() -> bool:
        seen = cluster.running()
        hosts = [h for (n, h), c in seen.items() if n in names for _ in range(c)]
        return len(hosts) == 2 and len(set(hosts)) == 2

    asyncio.run(_until(spread, 120))
    assert (
        sorted(n for (n, _), c in cluster.running().items() if n in names for _ in range(c))
        == names
    )


def test_manager_killed_mid_plan_restarts_and_every_guest_runs_exactly_once(
    lab_guests: GuestFactory, lab_cluster: Callable[..., LabCluster]
) -> None:
    flags = ["--automation=automatic", "--period-s=1", "--hold-s=3", "--cooldown-s=0"]
    cluster = lab_cluster(flags)
    names = [f"ctl-kill{i}" for i in range(3)]
    for host, name in zip(cluster.hosts, names, strict=True):
        lab_guests(host, name, "idle", memory_mib=64)

    def migrating() -> bool:
        rows = cluster.journal_rows(
            "SELECT count(*) FROM actions WHERE kind='migrate' AND state='running'"
        )
        return bool(rows and rows[0][0])

    asyncio.run(_until(migrating, 120))
    cluster.kill_manager()
    cluster.start_manager()
    asyncio.run(_until(lambda: cluster.connected_agents() == len(cluster.hosts), 60))

    def settled() -> bool:
        plans = cluster.journal_rows("SELECT count(*) FROM plans WHERE state='running'")
        return plans == [(0,)]

    asyncio.run(_until(settled, 120))
    log = (cluster.workdir / "manager-2.log").read_text()
    assert "resuming 1 interrupted plan(s) from the journal" in log
    seen = cluster.running()
    assert sorted(n for (n, _), c in seen.items() if n in names for _ in range(c)) == names
