"""The leader's journal, rules and powered-off nodes written through to a real etcd: a new
leader reads them back, and a deposed leader's writes are refused by the fence."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from vmgrid.agents.cluster.act.journal import ActionState, Journal, PlanState
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions
from vmgrid.agents.cluster.service.replica_store import EtcdMirror, plan_from_json, plan_to_json
from vmgrid.agents.common.etcd import EtcdClient, EtcdUnavailable
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.solver.constraints import make
from vmgrid.solver.plan import Action, ActionKind

ACTIONS = [
    Action(0, ActionKind.MIGRATE, "vm-a", "n1", "n2", 0, 5, "relieve n1"),
    Action(1, ActionKind.MIGRATE, "vm-b", "n1", "n3", 5, 9, "relieve n1", depends_on=(0,)),
]


def _options(etcd: EtcdCluster, prefix: str) -> ReplicaOptions:
    return ReplicaOptions(endpoints=tuple(etcd.endpoints), lease_ttl_s=2, prefix=prefix)


def test_a_plan_record_survives_its_json_form() -> None:
    journal = Journal(":memory:")
    journal.record_plan("p1", ACTIONS, origin="loop", summary="2 moves")
    journal.start_action("p1", 0, 1)
    record = journal.plan("p1")
    assert record is not None and plan_from_json(plan_to_json(record)) == record


def test_a_new_leader_reads_the_running_plan_and_rules_of_the_old_one(
    etcd1: EtcdCluster,
) -> None:
    async def scenario() -> None:
        prefix = f"/test/{uuid.uuid4().hex}"
        old, new = Replica(_options(etcd1, prefix), "c1"), Replica(_options(etcd1, prefix), "c1")
        old_journal, old_rules = Journal(":memory:"), RuleStore()
        mirror = EtcdMirror(old, old_journal, old_rules)
        try:
            await old.lead("127.0.0.1:1")
            mirror.attach()
            old_journal.record_plan("p1", ACTIONS, origin="loop", summary="2 moves")
            old_journal.start_action("p1", 0, 1)
            old_rules.add("keep-off-n3", make("ban", vms=("vm-b",), nodes=("n3",)))
            old_journal.remember_powered_off("n9", '{"hello": "of n9"}', True)
            await mirror.flush()
            assert mirror.writes == 3 and not mirror.dirty

            taking_over = asyncio.create_task(new.lead("127.0.0.1:2"))
            async with EtcdClient(etcd1.endpoints) as outsider:
                await outsider.revoke(old.election.lease)  # as if its lease had expired
            await asyncio.wait_for(taking_over, 10)
            new_journal, new_rules = Journal(":memory:"), RuleStore()
            new_rules.add("stale-local-rule", make("ban", vms=("vm-a",), nodes=("n1",)))
            new_journal.remember_powered_off("n8", "{}", False)  # powered on since
            assert await EtcdMirror(new, new_journal, new_rules).restore() == (1, 1)
            record = new_journal.plan("p1")
            assert record is not None and record.state is PlanState.RUNNING
            assert [(a.state, a.attempt) for a in record.actions] == [
                (ActionState.RUNNING, 1),
                (ActionState.PENDING, 0),
            ]
            assert record.actions[0].command_id == "p1/0/1"  # re-sent with the same id
            assert [r.rule_id for r in new_rules.rules()] == ["keep-off-n3"]
            assert new_journal.powered_off_nodes() == [("n9", '{"hello": "of n9"}', True)]

            old_journal.finish_action("p1", 0, ActionState.SUCCEEDED)  # the deposed leader
            with pytest.raises(EtcdUnavailable, match="etcd holds a newer leader"):
                await mirror.flush()
            assert old.deposed.is_set()
            assert old.client.errors["fenced"] == 1  # exported: vmgrid_cluster_etcd_errors
            again = Journal(":memory:")
            await EtcdMirror(new, again, RuleStore()).restore()
            final = again.plan("p1")
            assert final is not None and final.actions[0].state is ActionState.RUNNING
        finally:
            await old.close()
            await new.close()

    asyncio.run(scenario())


def test_an_unreadable_entry_in_etcd_is_left_out_and_counted(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        replica = Replica(_options(etcd1, f"/test/{uuid.uuid4().hex}"), "c1")
        mirror = EtcdMirror(replica, Journal(":memory:"), RuleStore())
        try:
            await replica.client.put(f"{mirror.plans_prefix}p-bad", "{not json")
            await replica.client.put(f"{mirror.rules_prefix}r-bad", '{"kind": "ban"}')
            assert await mirror.restore() == (1, 0)
            assert replica.client.errors == {"unreadable": 2}
        finally:
            await replica.close()

    asyncio.run(scenario())
