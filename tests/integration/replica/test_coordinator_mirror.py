"""The coordinator's registry, grid moves and jobs written through to a real etcd: a new
leader reads them back into its own SQLite tables (etcd wins over its stale rows), and a
deposed leader can neither write nor send a grid command."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from sqlite3 import Connection

import pytest
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.cluster.service.state_mirror import StateMirror
from vmgrid.agents.common.etcd import EtcdClient, EtcdUnavailable
from vmgrid.agents.jobmodel.store import JobStore
from vmgrid.coordinator.moves import Move, MoveJournal, Phase
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.replica import coordinator_replica
from vmgrid.lab.etcd import EtcdCluster

HELLO = m.ClusterHello("c1", m.Capacity(4000, 2**33, 10**9), node_count=2, endpoint="h:1")
MOVE = Move("p-m0", "p", m.VmDemand("vm-1", "web", "c1-n1", 1000, 2**30), "c1", "c2", ("c1", "c2"))


def _tables(registry: Registry, journal: MoveJournal, jobs: JobStore) -> dict[str, Connection]:
    return {
        "clusters": registry.connection,
        "grid_moves": journal.connection,
        "jobs": jobs.connection,
    }


def test_a_new_coordinator_leader_reads_the_registry_and_moves_and_fences_the_old(
    etcd1: EtcdCluster,
) -> None:
    async def scenario() -> None:
        options = ReplicaOptions(
            endpoints=tuple(etcd1.endpoints), lease_ttl_s=2, prefix=f"/test/{uuid.uuid4().hex}"
        )
        old, new = coordinator_replica(options, "g"), coordinator_replica(options, "g")
        registry, journal, jobs = (
            Registry(":memory:"),
            MoveJournal(":memory:"),
            JobStore(":memory:"),
        )
        mirror = StateMirror(old, _tables(registry, journal, jobs))
        try:
            await old.lead("127.0.0.1:1")
            assert old.root.endswith("/grids/g")
            registry.put(m.ClusterRecord(HELLO, m.ClusterState.CONNECTED, 5, None))
            journal.put(MOVE)
            journal.put(Move("p-m1", "p", MOVE.vm, "c1", "c2"))
            assert mirror.dirty
            await mirror.durable()  # what a grid command waits for
            assert mirror.writes == 3 and not mirror.dirty
            journal.connection.execute("DELETE FROM grid_moves WHERE move_id = 'p-m1'")
            journal.put(_reserved(MOVE))
            await mirror.flush()
            assert mirror.writes == 5  # one put, one delete

            taking_over = asyncio.create_task(new.lead("127.0.0.1:2"))
            async with EtcdClient(etcd1.endpoints) as outsider:
                await outsider.revoke(old.election.lease)  # as if its lease had expired
            await asyncio.wait_for(taking_over, 10)
            stale = Registry(":memory:")
            stale.put(
                m.ClusterRecord(m.ClusterHello("gone", m.Capacity()), m.ClusterState.LOST, 1, None)
            )
            new_journal, new_jobs = MoveJournal(":memory:"), JobStore(":memory:")
            restored = StateMirror(new, _tables(stale, new_journal, new_jobs))
            assert await restored.restore() == {"clusters": 1, "grid_moves": 1, "jobs": 0}
            assert not restored.dirty  # what was read is not written back
            stale.reload()
            assert [r.cluster_id for r in stale.records()] == ["c1"]
            assert stale.get("c1").hello == HELLO
            assert new_journal.moves() == [_reserved(MOVE)]

            journal.put(Move("p-m2", "p", MOVE.vm, "c1", "c2"))  # the deposed leader
            with pytest.raises(EtcdUnavailable):
                await mirror.durable()
            assert old.deposed.is_set()
            again = MoveJournal(":memory:")
            await StateMirror(
                new, _tables(Registry(":memory:"), again, JobStore(":memory:"))
            ).restore()
            assert [mv.move_id for mv in again.moves()] == ["p-m0"]
        finally:
            await old.close()
            await new.close()

    asyncio.run(scenario())


def _reserved(move: Move) -> Move:
    return replace(move, phase=Phase.RESERVED, node_id="c2-n1")
