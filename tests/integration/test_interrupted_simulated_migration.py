"""A simulated migration cut short by a manager crash is finished after the restart.

The crash is staged between the steps of a simulated migration: the VM is defined on the
destination and destroyed on the source, so it runs nowhere. Resuming the journaled plan must
start it on the destination (once), not call the action stale and leave the VM off.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_control_loop import cluster, placement, wait_for
from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.driver import DriverOptions, ManagerDriver, simulated_domain_xml
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import Journal, PlanState
from vmgrid.agents.model import VmState
from vmgrid.solver.plan import Action, ActionKind


def test_restart_finishes_a_simulated_migration_interrupted_between_its_steps(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path) as server:
            manager = server.manager
            vm_uuid = next(u for u, node in placement(server).items() if node == "n1")
            _, vm = manager.state.find_vm(vm_uuid)
            journal_path = tmp_path / "journal.sqlite"
            action = Action(0, ActionKind.MIGRATE, vm_uuid, "n1", "n2", 0, 1, "test")
            first = Journal(journal_path)
            first.record_plan("p1", [action])
            first.start_action("p1", 0, 0)
            first.close()
            # What the killed manager had done: define on n2, destroy on n1.
            cid = "p1/0/0"
            define = m.DefineCommand(f"{cid}/define", simulated_domain_xml(vm))
            assert (await manager.send_command("n2", define, 20)).state is m.CommandState.SUCCEEDED
            destroy = m.DestroyCommand(f"{cid}/destroy", vm_uuid)
            assert (await manager.send_command("n1", destroy, 20)).state is m.CommandState.SUCCEEDED
            await wait_for(lambda: vm_uuid not in placement(server), 10)

            driver = ManagerDriver(manager, DriverOptions(simulated_time_scale=0.05))
            journal = Journal(journal_path)
            reports = await PlanExecutor(driver, journal).resume_unfinished()
            assert [r.state for r in reports] == [PlanState.SUCCEEDED], reports[0].messages
            await wait_for(lambda: placement(server).get(vm_uuid) == "n2", 10)
            running = [
                view.node_id
                for view in manager.state.views()
                for other in view.vms
                if other.uuid == vm_uuid and other.state is VmState.RUNNING
            ]
            assert running == ["n2"]

    asyncio.run(scenario())
