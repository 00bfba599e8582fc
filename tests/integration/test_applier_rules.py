"""The applier keeps placement rules, whoever asks: on a real runtime with test-driver agents,
an operator migration that would break a spread rule is refused by the plan executor before it
starts (the action is skipped, naming the rule), the VM stays where it was, and a migration
that keeps the rule still runs. The vmgrid policy drops such moves from its plans too."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.cluster.act.journal import ActionState, PlanState
from vmgrid.agents.model import VmState
from vmgrid.solver.constraints import Spread
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
        refused = stub.MigrateVm(onto_b, timeout=30).plan.plan_id
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
