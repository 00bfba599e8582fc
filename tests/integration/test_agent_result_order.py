"""A command's final result reaches the manager after a report that shows its effect.

The manager reads VM placement from reports and acts on results at once (a simulated migration
starts the VM on the target as soon as the source says it destroyed it), so a result must never
overtake the report of the state it produced; otherwise the manager would see a VM running on
two nodes. A real agent on the libvirt test driver, its manager unreachable, so that everything
it would send stays in its outbox in order.
"""

from __future__ import annotations

import asyncio

from offline_agent import offline_agent
from vmgrid.agents import model


async def sent_after(*commands: model.Command) -> list[object]:
    """Run an agent until it has reported once, run `commands`, return what it would send."""
    async with offline_agent(report_period_s=3600) as agent:
        while agent.outbox.pop() is not None:  # what the first report period queued
            pass
        for command in commands:
            agent.actuators.submit(command)
            await agent.actuators.drain()
        sent = []
        while (item := agent.outbox.pop()) is not None:
            sent.append(item)
        return sent


def vm_states(report: object) -> dict[str, model.VmState]:
    assert isinstance(report, model.NodeReport)
    return {vm.name: vm.state for vm in report.vms}


def test_a_destroy_result_follows_a_report_with_the_vm_shut_off() -> None:
    sent = asyncio.run(sent_after(model.DestroyCommand("c1", "test")))
    results = [i for i, item in enumerate(sent) if isinstance(item, model.CommandResult)]
    assert len(results) == 1 and sent[results[0]].state is model.CommandState.SUCCEEDED  # type: ignore[union-attr]
    reports = [item for item in sent[: results[0]] if isinstance(item, model.NodeReport)]
    assert reports and vm_states(reports[-1])["test"] is model.VmState.SHUT_OFF
    assert not any(isinstance(item, model.NodeReport) for item in sent[results[0] :])


def test_a_command_that_changes_no_vm_is_not_preceded_by_a_report() -> None:
    sent = asyncio.run(sent_after(model.ListSnapshotsCommand("c1", "test")))
    assert [type(item) for item in sent] == [model.CommandResult]
