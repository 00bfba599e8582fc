"""An HA restart waits for the plan that holds its member, touching nothing meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from test_ha_submission import NODES, cluster, job
from vmgrid.v1 import common_pb2
from waiting import wait_for

pytestmark = pytest.mark.slow


def test_a_member_held_by_another_plan_is_restarted_only_once_that_plan_ends(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("held", count=1))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            (vm_uuid,) = submitted.vm_uuids
            await wait_for(lambda: vm_uuid in c.running(), 10)
            victim = c.running()[vm_uuid][0]
            state, executor = c.server.manager.state, c.ft.jobs.executor
            others = [n for n in NODES if n != victim]
            try:
                with executor.holding("maintenance-9", [vm_uuid]):
                    os.kill(c.agents[victim].pid, signal.SIGSTOP)
                    await wait_for(lambda: victim in c.ft.ha.failed, 15)
                    await asyncio.sleep(2.0)  # several HA passes (every 0.3 s)
                    # Nothing done while held: no restart, no copy defined on another node.
                    assert c.ft.ha.restarts == []
                    assert not any(vm_uuid in state.owners.hidden(n) for n in others)
                    assert not [p for p in executor.journal.plans() if p.origin == "ha"]
                # HA records its restart once the boot's plan has ended: after the VM reports
                await wait_for(
                    lambda: (
                        c.ft.ha.restarts and any(n in others for n in c.running().get(vm_uuid, []))
                    ),
                    20,
                )
                assert [r.from_node for r in c.ft.ha.restarts] == [victim]
                (ha_plan,) = [p for p in executor.journal.plans() if p.origin == "ha"]
                assert ha_plan.plan_id.startswith(f"ha-{vm_uuid}-")
            finally:
                os.kill(c.agents[victim].pid, signal.SIGCONT)

    asyncio.run(scenario())
