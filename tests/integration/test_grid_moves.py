"""Cross-cluster moves driven by the coordinator, on two simulated clusters (libvirt test driver).

Each test checks the protocol's promise: the VM ends running exactly once, in the destination
after a success and in the source after a failure, and a restarted coordinator finishes a move
from its journal without doing any step twice.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc.aio
import pytest
from grid_harness import Grid, two_clusters
from vmgrid.agents import model as am
from vmgrid.agents.cluster.act.driver import simulated_domain_xml
from vmgrid.agents.cluster.grid.journal import ReservationState
from vmgrid.coordinator.mover import MoverOptions
from vmgrid.coordinator.moves import Phase, PlanStatus
from vmgrid.solver.constraints import make
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc

pytestmark = pytest.mark.slow


def first_vm(grid: Grid, cluster_id: str) -> str:
    view = grid.runtimes[cluster_id].manager.state.views()[0]
    return view.vms[0].uuid


async def wait_running_in(grid: Grid, vm_uuid: str, cluster_id: str, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        where = grid.where(vm_uuid)
        if [(c, s) for c, _, s in where] == [(cluster_id, "running")]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"VM {vm_uuid} is at {grid.where(vm_uuid)}, not running in {cluster_id}")


def test_vm_moved_across_clusters_runs_once_in_the_destination(tmp_path: Path) -> None:
    async def go() -> None:
        async with two_clusters(tmp_path) as grid:
            vm = first_vm(grid, "c1")
            async with grpc.aio.insecure_channel(grid.listen) as channel:
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
                reply = await stub.MigrateVmToCluster(
                    coordinator_pb2.MigrateVmToClusterRequest(
                        vm_uuid=vm, destination_cluster_id="c2", command_id="t1"
                    )
                )
                plan_id = reply.plan.plan_id
                again = await stub.MigrateVmToCluster(
                    coordinator_pb2.MigrateVmToClusterRequest(
                        vm_uuid=vm, destination_cluster_id="c2", command_id="t1"
                    )
                )
                assert again.plan.plan_id == plan_id
                assert await grid.coordinator.mover.wait(plan_id) is PlanStatus.SUCCEEDED
                got = await stub.GetGridPlan(coordinator_pb2.GetGridPlanRequest(plan_id=plan_id))
                assert got.plan.moves[0].simulated
            await wait_running_in(grid, vm, "c2")
            handler = grid.runtimes["c2"].grid_commands
            assert handler is not None
            states = [r.state for r in handler.journal.reservations()]
            assert states == [ReservationState.COMMITTED]

    asyncio.run(asyncio.wait_for(go(), 150))


def test_a_move_out_that_would_break_a_rule_of_the_source_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with two_clusters(tmp_path) as grid:
            vm = first_vm(grid, "c1")
            rules = grid.runtimes["c1"].manager.state.rules
            rules.add("stays-up", make("running", vms=(vm,)))
            mover = grid.coordinator.mover
            plan_id = mover.migrate_vm(vm, "c2", bandwidth_cap_bps=1_000_000_000)
            assert await mover.wait(plan_id) is PlanStatus.FAILED
            (move,) = mover.moves(plan_id)
            assert "would break rule stays-up" in move.message, move.message
            assert [c for c, _, _ in grid.where(vm)] == ["c1"]

    asyncio.run(asyncio.wait_for(go(), 150))


def test_a_move_in_that_no_node_could_take_without_breaking_a_rule_is_refused_at_the_source(
    tmp_path: Path,
) -> None:
    """A gather of the VM with one whose node is lost binds it to that node (its VMs come back
    with it): the destination's applier would refuse its start on any other, so the
    reservation is refused, naming the rule, while the VM is still at its source (it used to
    be reserved, leave its source and then wait for a start refused at every retry)."""

    async def go() -> None:
        async with two_clusters(tmp_path) as grid:
            vm = first_vm(grid, "c1")
            c2 = grid.runtimes["c2"].manager.state
            node = c2.views()[0].node_id
            partner = c2.views()[0].vms[0].uuid
            c2.rules.add("together", make("gather", vms=(vm, partner)))
            sim = grid.sims["c2"]
            sim.processes[list(sim.node_vms).index(node)].kill()
            c2._nodes[node].last_seen_monotonic -= c2.heartbeat_timeout_s + 1  # noqa: SLF001
            assert node in c2.check_timeouts()
            mover = grid.coordinator.mover
            plan_id = mover.migrate_vm(vm, "c2", bandwidth_cap_bps=1_000_000_000)
            assert await asyncio.wait_for(mover.wait(plan_id), 60) is PlanStatus.FAILED
            (move,) = mover.moves(plan_id)
            assert "reservation refused" in move.message, move.message
            assert "would break rule together" in move.message, move.message
            assert [(c, s) for c, _, s in grid.where(vm)] == [("c1", "running")]

    asyncio.run(asyncio.wait_for(go(), 150))


def test_failure_mid_move_releases_the_reservation_and_the_vm_stays_at_the_source(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with two_clusters(tmp_path, time_scale=1.0) as grid:
            vm = first_vm(grid, "c1")
            node, _ = grid.runtimes["c1"].manager.state.find_vm(vm)
            mover = grid.coordinator.mover
            plan_id = mover.migrate_vm(vm, "c2", bandwidth_cap_bps=1_000_000_000)
            while mover.moves(plan_id)[0].phase is Phase.PENDING:
                await asyncio.sleep(0.05)
            # the source node's agent dies while the VM's memory is being copied
            sim = grid.sims["c1"]
            agent = sim.processes[list(sim.node_vms).index(node)]
            agent.kill()
            assert await mover.wait(plan_id) is PlanStatus.FAILED
            move = mover.moves(plan_id)[0]
            assert move.phase is Phase.RELEASED
            handler = grid.runtimes["c2"].grid_commands
            assert handler is not None
            assert [r.state for r in handler.journal.reservations()] == [ReservationState.RELEASED]
            assert [c for c, _, _ in grid.where(vm)] == ["c1"]

    asyncio.run(asyncio.wait_for(go(), 150))


def test_restarted_coordinator_resumes_a_move_without_duplicating_it(tmp_path: Path) -> None:
    async def go() -> None:
        async with two_clusters(tmp_path, time_scale=0.5) as grid:
            vm = first_vm(grid, "c1")
            plan_id = grid.coordinator.mover.migrate_vm(vm, "c2", bandwidth_cap_bps=1_000_000_000)
            while grid.coordinator.mover.moves(plan_id)[0].phase is Phase.PENDING:
                await asyncio.sleep(0.05)
            await grid.restart_coordinator()
            mover = grid.coordinator.mover
            assert mover.moves(plan_id)[0].phase in (Phase.RESERVED, Phase.MIGRATED)
            assert await mover.wait(plan_id) is PlanStatus.SUCCEEDED
            await wait_running_in(grid, vm, "c2")
            handler = grid.runtimes["c2"].grid_commands
            assert handler is not None
            assert len(handler.journal.reservations()) == 1

    asyncio.run(asyncio.wait_for(go(), 150))


async def _fill(grid: Grid, node: str, tag: str, cluster: str = "c2") -> str:
    """Start a VM as large as the node on it, behind the applier's back (as an operator's
    virsh would), and wait until the node's report shows it running."""
    manager = grid.runtimes[cluster].manager
    filler = am.VmUsage(
        str(uuid.uuid4()),
        f"filler-{tag}",
        am.VmState.DEFINED,
        vcpus=1,
        cpu_used_millicores=0,
        memory_used_bytes=0,
        memory_allocated_bytes=16384 * 2**20,
    )
    for command in (
        am.DefineCommand(f"fill-{tag}/define", simulated_domain_xml(filler)),
        am.StartCommand(f"fill-{tag}/start", filler.uuid),
    ):
        result = await manager.send_command(node, command, 30)
        assert result.state is am.CommandState.SUCCEEDED, result.message
    deadline = asyncio.get_running_loop().time() + 20
    while [(n, s) for _, n, s in grid.where(filler.uuid)] != [(node, "running")]:
        assert asyncio.get_running_loop().time() < deadline, grid.where(filler.uuid)
        await asyncio.sleep(0.1)
    return filler.uuid


def test_an_arrival_whose_reserved_node_filled_up_starts_on_another_node_once_one_has_room(
    tmp_path: Path,
) -> None:
    """The room reserved for a VM was taken before it arrived (a VM started on the node
    behind the applier's back): its start there is refused, so it starts on another node of
    the cluster; while none has room, the move says why it waits, and the VM is defined on
    no node (it used to be retried on the full node for ever)."""

    async def go() -> None:
        async with two_clusters(tmp_path, time_scale=1.0) as grid:
            vm = first_vm(grid, "c1")
            _, usage = grid.runtimes["c1"].manager.state.find_vm(vm)
            mover = grid.coordinator.mover
            # the simulated transfer takes 8 s: time to fill both nodes of c2 before it ends
            bandwidth = usage.memory_allocated_bytes * 8 // 8
            plan_id = mover.migrate_vm(vm, "c2", bandwidth_cap_bps=bandwidth)
            while mover.moves(plan_id)[0].phase is Phase.PENDING:
                await asyncio.sleep(0.05)
            reserved = mover.moves(plan_id)[0].node_id
            c2 = grid.runtimes["c2"].manager.state
            (other,) = [v.node_id for v in c2.views() if v.node_id != reserved]
            await _fill(grid, reserved, "a")
            second = await _fill(grid, other, "b")
            assert mover.moves(plan_id)[0].phase is Phase.RESERVED
            deadline = asyncio.get_running_loop().time() + 60
            while "no other node takes it" not in mover.moves(plan_id)[0].message:
                assert asyncio.get_running_loop().time() < deadline, mover.moves(plan_id)
                await asyncio.sleep(0.2)
            message = mover.moves(plan_id)[0].message
            assert f"did not start on {reserved}" in message, message
            assert mover.moves(plan_id)[0].phase is Phase.MIGRATED
            assert [c for c, _, s in grid.where(vm) if s == "running"] == []
            result = await c2_send(grid, other, am.DestroyCommand("free-b", second))
            assert result.state is am.CommandState.SUCCEEDED, result.message
            assert await asyncio.wait_for(mover.wait(plan_id), 60) is PlanStatus.SUCCEEDED
            await wait_running_in(grid, vm, "c2")
            assert grid.where(vm) == [("c2", other, "running")]
            handler = grid.runtimes["c2"].grid_commands
            assert handler is not None
            (reservation,) = handler.journal.reservations()
            assert (reservation.node_id, reservation.state) == (
                other,
                ReservationState.COMMITTED,
            )
            deadline = asyncio.get_running_loop().time() + 10
            while any(u.uuid == vm for u in c2.view(reserved).vms):
                assert asyncio.get_running_loop().time() < deadline, c2.view(reserved).vms
                await asyncio.sleep(0.1)

    asyncio.run(asyncio.wait_for(go(), 150))


async def c2_send(grid: Grid, node: str, command: am.Command) -> am.CommandResult:
    return await grid.runtimes["c2"].manager.send_command(node, command, 30)


def test_an_arrival_that_no_node_of_its_destination_takes_is_sent_back_to_its_source(
    tmp_path: Path,
) -> None:
    """Both nodes of the destination are filled behind the applier's back while the VM is
    on its way: after `return_after_s` of failed commits the destination releases its
    reservation (removing what the failed starts left), and the VM starts again in its
    source; the move ends `returned` (the plan failed), the VM running once."""

    async def go() -> None:
        async with two_clusters(tmp_path, time_scale=1.0) as grid:
            vm = first_vm(grid, "c1")
            _, usage = grid.runtimes["c1"].manager.state.find_vm(vm)
            mover = grid.coordinator.mover
            mover.options = MoverOptions(return_after_s=3.0)
            bandwidth = usage.memory_allocated_bytes * 8 // 8  # an 8 s transfer
            plan_id = mover.migrate_vm(vm, "c2", bandwidth_cap_bps=bandwidth)
            while mover.moves(plan_id)[0].phase is Phase.PENDING:
                await asyncio.sleep(0.05)
            for i, view in enumerate(grid.runtimes["c2"].manager.state.views()):
                await _fill(grid, view.node_id, f"c2-{i}")
            assert mover.moves(plan_id)[0].phase is Phase.RESERVED
            assert await asyncio.wait_for(mover.wait(plan_id), 90) is PlanStatus.FAILED
            (move,) = mover.moves(plan_id)
            assert move.phase is Phase.RETURNED, move
            assert move.message.startswith("returned to c1"), move.message
            await wait_running_in(grid, vm, "c1")
            assert [(c, s) for c, _, s in grid.where(vm)] == [("c1", "running")]
            c2 = grid.runtimes["c2"].grid_commands
            c1 = grid.runtimes["c1"].grid_commands
            assert c2 is not None and c1 is not None
            assert [r.state for r in c2.journal.reservations()] == [ReservationState.RELEASED]
            assert [(r.reservation_id, r.state) for r in c1.journal.reservations()] == [
                (f"{move.move_id}/home0", ReservationState.COMMITTED)
            ]
            c2_state = grid.runtimes["c2"].manager.state
            deadline = asyncio.get_running_loop().time() + 10
            while any(u.uuid == vm for view in c2_state.views() for u in view.vms):
                assert asyncio.get_running_loop().time() < deadline, c2_state.views()
                await asyncio.sleep(0.1)

    asyncio.run(asyncio.wait_for(go(), 150))
