"""The applier keeps placement rules, whoever asks: on a real runtime with test-driver agents,
a migration that would break a spread rule is refused by the plan executor before it starts
(the action is skipped, naming the rule), the VM stays where it was, and a migration that keeps
the rule still runs. An operator asking for such a migration is told at once (the operator API
asks the applier's check first, and starts nothing). The vmgrid policy drops such moves from
its plans too."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.cluster.act.journal import ActionState, PlanState
from vmgrid.agents.model import VmState
from vmgrid.solver.constraints import Spread
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    ops = OpsCluster()
    ops.start(tmp_path_factory.mktemp("applier-rules"))
    try:
        yield ops
    finally:
        ops.stop()


def test_operator_migration_that_breaks_spread_is_skipped_and_one_that_keeps_it_runs(
    cluster: OpsCluster,
) -> None:
    a, b = cluster.vm_named("n1-vm0"), cluster.vm_named("n2-vm0")
    runtime = cluster.runtime
    assert runtime is not None
    cluster.call(lambda: runtime.manager.state.rules.add("ab-apart", Spread((a, b))))
    with grpc.insecure_channel(cluster.address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        onto_b = cluster_pb2.MigrateVmRequest(vm_uuid=a, destination_node_id="n2")
        with pytest.raises(grpc.RpcError) as told:
            stub.MigrateVm(onto_b, timeout=30)
        assert told.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "ab-apart" in told.value.details() and "spread" in told.value.details()
        # The same action given to the applier directly (as any caller's plan would be):
        move = Action(0, ActionKind.MIGRATE, a, "n1", "n2", 0, 1, "test: onto b")
        refused = "direct-onto-b"
        cluster.run(runtime.executor.run(refused, (move,), origin="test"))
        cluster.wait_idle()
        record = cluster.call(lambda: runtime.journal.plan(refused))
        assert record is not None and record.state is PlanState.FAILED
        (action,) = record.actions
        assert action.state is ActionState.SKIPPED
        assert "ab-apart" in action.message and "spread" in action.message
        assert cluster.placement()[a] == ("n1", VmState.RUNNING)

        elsewhere = cluster_pb2.MigrateVmRequest(vm_uuid=a, destination_node_id="n3")
        moved = stub.MigrateVm(elsewhere, timeout=30).plan.plan_id
        cluster.wait_idle()
        record = cluster.call(lambda: runtime.journal.plan(moved))
        assert record is not None and record.state is PlanState.SUCCEEDED
        cluster.wait_for(lambda: cluster.placement()[a] == ("n3", VmState.RUNNING))
    cluster.call(lambda: runtime.manager.state.rules.delete("ab-apart"))
