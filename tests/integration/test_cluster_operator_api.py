"""ClusterService's operator RPCs on a real runtime: plans, migrations, VM actions, maintenance.

Everything goes through a real gRPC channel on 127.0.0.1 to a ClusterRuntime whose agents run
the libvirt test driver; bad requests must come back with the right status naming the bad value
and leave the manager serving with its state intact.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.cluster.decide.control import find_trigger
from vmgrid.agents.model import VmState
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    ops = OpsCluster()
    ops.start(tmp_path_factory.mktemp("ops-api"))
    try:
        yield ops
    finally:
        ops.stop()


@pytest.fixture(scope="module")
def stub(cluster: OpsCluster) -> Iterator[cluster_pb2_grpc.ClusterServiceStub]:
    with grpc.insecure_channel(cluster.address) as channel:
        yield cluster_pb2_grpc.ClusterServiceStub(channel)


def follow(stub: cluster_pb2_grpc.ClusterServiceStub, start) -> tuple[common_pb2.Plan, int, list]:  # type: ignore[no-untyped-def]
    """Open WatchEvents, start a plan with `start()`, read its events to the final state."""
    kinds = [common_pb2.EVENT_KIND_PLAN_CHANGED]
    events = stub.WatchEvents(cluster_pb2.WatchEventsRequest(kinds=kinds), timeout=60)
    events.initial_metadata()
    plan = start()
    seen = []
    final = {
        common_pb2.PLAN_STATE_SUCCEEDED,
        common_pb2.PLAN_STATE_FAILED,
        common_pb2.PLAN_STATE_CANCELLED,
    }
    for reply in events:
        if reply.event.plan_id != plan.plan_id:
            continue
        seen.append(reply)
        if reply.plan_state in final:
            events.cancel()
            return plan, reply.plan_state, seen
    raise AssertionError("event stream ended before the plan did")


def rpc_error(call, request) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=30)
    return err.value


def test_migrate_to_a_named_node_runs_a_simulated_one_action_plan(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    vm = cluster.vm_named("n1-vm0")
    host = cluster.placement()[vm][0]
    target = "n2" if host != "n2" else "n3"
    request = cluster_pb2.MigrateVmRequest(vm_uuid=vm, destination_node_id=target)
    plan, state, events = follow(stub, lambda: stub.MigrateVm(request, timeout=30).plan)
    assert state == common_pb2.PLAN_STATE_SUCCEEDED
    assert [a.kind for a in plan.actions] == [common_pb2.PLAN_ACTION_KIND_MIGRATE]
    assert plan.actions[0].simulated and "simulated" in plan.summary
    assert events[-1].plan_progress_fraction == 1.0
    assert any(e.event.simulated for e in events)
    cluster.wait_for(lambda: cluster.placement()[vm] == (target, VmState.RUNNING))


def test_migrate_without_a_node_lets_the_solver_choose_another_node(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    vm = cluster.vm_named("n3-vm1")
    host = cluster.placement()[vm][0]
    request = cluster_pb2.MigrateVmRequest(vm_uuid=vm)
    plan, state, _ = follow(stub, lambda: stub.MigrateVm(request, timeout=30).plan)
    assert state == common_pb2.PLAN_STATE_SUCCEEDED
    target = plan.actions[0].destination_node_id
    assert target != host and "solver chose" in plan.actions[0].reason
    cluster.wait_for(lambda: cluster.placement()[vm] == (target, VmState.RUNNING))


def test_suspend_resume_and_snapshot_cycle_through_the_agent(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    vm = cluster.vm_named("n2-vm0")
    stub.SuspendVm(cluster_pb2.SuspendVmRequest(vm_uuid=vm), timeout=30)
    cluster.wait_for(lambda: cluster.placement()[vm][1] is VmState.PAUSED)
    again = rpc_error(stub.SuspendVm, cluster_pb2.SuspendVmRequest(vm_uuid=vm))
    assert again.code() is grpc.StatusCode.FAILED_PRECONDITION and "paused" in again.details()
    stub.ResumeVm(cluster_pb2.ResumeVmRequest(vm_uuid=vm), timeout=30)
    cluster.wait_for(lambda: cluster.placement()[vm][1] is VmState.RUNNING)

    create = cluster_pb2.CreateSnapshotRequest(vm_uuid=vm, snapshot_name="before")
    assert (
        stub.CreateSnapshot(create, timeout=30).result.state == common_pb2.COMMAND_STATE_SUCCEEDED
    )
    listed = stub.ListSnapshots(cluster_pb2.ListSnapshotsRequest(vm_uuid=vm), timeout=30)
    assert list(listed.snapshot_names) == ["before"]
    duplicate = rpc_error(stub.CreateSnapshot, create)
    assert duplicate.code() is grpc.StatusCode.FAILED_PRECONDITION
    revert = cluster_pb2.RevertSnapshotRequest(vm_uuid=vm, snapshot_name="before")
    stub.RevertSnapshot(revert, timeout=30)
    delete = cluster_pb2.DeleteSnapshotRequest(vm_uuid=vm, snapshot_name="before")
    stub.DeleteSnapshot(delete, timeout=30)
    missing = rpc_error(stub.RevertSnapshot, revert)
    assert missing.code() is grpc.StatusCode.NOT_FOUND and "'before'" in missing.details()


def test_dry_run_executes_nothing_and_apply_runs_it_by_id(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    before = cluster.placement()
    request = cluster_pb2.PlanReconfigurationRequest(objective="consolidate")
    dry = stub.PlanReconfiguration(request, timeout=60).plan
    assert dry.state == common_pb2.PLAN_STATE_PROPOSED and dry.actions
    assert all(a.reason for a in dry.actions)
    assert cluster.placement() == before
    listed = stub.ListPlans(cluster_pb2.ListPlansRequest(), timeout=30).plans
    assert dry.plan_id in [p.plan_id for p in listed]

    apply = cluster_pb2.ApplyPlanRequest(plan_id=dry.plan_id)
    _, state, _ = follow(stub, lambda: stub.ApplyPlan(apply, timeout=30).plan)
    assert state == common_pb2.PLAN_STATE_SUCCEEDED
    cluster.wait_for(lambda: len({n for n, _ in cluster.placement().values()}) < 3)
    assert set(cluster.placement()) == set(before)  # nothing lost
    twice = rpc_error(stub.ApplyPlan, apply)
    assert twice.code() is grpc.StatusCode.FAILED_PRECONDITION and "succeeded" in twice.details()
    cancel = rpc_error(stub.CancelPlan, cluster_pb2.CancelPlanRequest(plan_id=dry.plan_id))
    assert cancel.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_recommendation_waits_then_is_rejected_or_approved(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    def recommend() -> str:
        decision = cluster.run(cluster.runtime.loop.cycle())  # type: ignore[union-attr]
        assert decision is not None and decision.plan is not None, decision
        pending = cluster.call(lambda: list(cluster.runtime.loop.pending))  # type: ignore[union-attr]
        assert len(pending) == 1
        return pending[0]

    spread = ["n1", "n2", "n3"]  # so that consolidation has nodes to free
    for i, vm in enumerate(sorted(cluster.placement())):
        if cluster.placement()[vm][0] != spread[i % 3]:
            request = cluster_pb2.MigrateVmRequest(vm_uuid=vm, destination_node_id=spread[i % 3])
            follow(stub, lambda r=request: stub.MigrateVm(r, timeout=30).plan)
    cluster.wait_for(lambda: len({n for n, _ in cluster.placement().values()}) == 3)
    runtime = cluster.runtime
    assert runtime is not None

    def underload_held() -> bool:  # the hold time (1 s), on the reports of the new placement
        return find_trigger(runtime.manager.state.snapshot(), runtime.loop.config) is not None

    cluster.wait_for(lambda: cluster.call(underload_held), 30)
    first = recommend()
    waiting = stub.ListPlans(cluster_pb2.ListPlansRequest(), timeout=30).plans
    assert any(
        p.plan_id == first and p.state == common_pb2.PLAN_STATE_AWAITING_APPROVAL for p in waiting
    )
    cancel = rpc_error(stub.CancelPlan, cluster_pb2.CancelPlanRequest(plan_id=first))
    assert cancel.code() is grpc.StatusCode.FAILED_PRECONDITION and "reject" in cancel.details()
    rejected = stub.RejectPlan(cluster_pb2.RejectPlanRequest(plan_id=first, reason="not now"))
    assert rejected.plan.state == common_pb2.PLAN_STATE_REJECTED

    second = recommend()
    approve = cluster_pb2.ApprovePlanRequest(plan_id=second)
    _, state, _ = follow(stub, lambda: stub.ApprovePlan(approve, timeout=30).plan)
    assert state == common_pb2.PLAN_STATE_SUCCEEDED
    gone = rpc_error(stub.RejectPlan, cluster_pb2.RejectPlanRequest(plan_id=second))
    assert gone.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_drain_empties_the_node_and_undrain_brings_its_vms_back(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    busiest = max(
        {n for n, _ in cluster.placement().values()},
        key=lambda n: sum(1 for h, _ in cluster.placement().values() if h == n),
    )
    on_it = {vm for vm, (h, _) in cluster.placement().items() if h == busiest}
    reply = stub.DrainNode(cluster_pb2.DrainNodeRequest(node_id=busiest), timeout=30)
    assert reply.node.draining
    cluster.wait_for(lambda: all(cluster.placement()[v][0] != busiest for v in on_it), 60)
    cluster.wait_idle()
    stub.UndrainNode(cluster_pb2.UndrainNodeRequest(node_id=busiest), timeout=30)
    cluster.wait_for(lambda: all(cluster.placement()[v][0] == busiest for v in on_it), 60)
    cluster.wait_idle()
    assert len(cluster.placement()) == 6


@pytest.mark.parametrize(
    ("method", "request_", "code", "named"),
    [
        ("PlanReconfiguration", cluster_pb2.PlanReconfigurationRequest(objective="shrink"),
         grpc.StatusCode.INVALID_ARGUMENT, "'shrink'"),
        ("PlanReconfiguration", cluster_pb2.PlanReconfigurationRequest(drain_node_ids=["n9"]),
         grpc.StatusCode.NOT_FOUND, "'n9'"),
        ("ApplyPlan", cluster_pb2.ApplyPlanRequest(plan_id="dry-nope"),
         grpc.StatusCode.NOT_FOUND, "'dry-nope'"),
        ("ApprovePlan", cluster_pb2.ApprovePlanRequest(plan_id="plan-nope"),
         grpc.StatusCode.NOT_FOUND, "'plan-nope'"),
        ("CancelPlan", cluster_pb2.CancelPlanRequest(plan_id="plan-nope"),
         grpc.StatusCode.NOT_FOUND, "'plan-nope'"),
        ("MigrateVm", cluster_pb2.MigrateVmRequest(vm_uuid="no-such-vm"),
         grpc.StatusCode.NOT_FOUND, "no-such-vm"),
        ("MigrateVm", cluster_pb2.MigrateVmRequest(vm_uuid=""),
         grpc.StatusCode.INVALID_ARGUMENT, "vm_uuid"),
        ("CreateSnapshot", cluster_pb2.CreateSnapshotRequest(vm_uuid="x", snapshot_name="a b"),
         grpc.StatusCode.INVALID_ARGUMENT, "'a b'"),
        ("DrainNode", cluster_pb2.DrainNodeRequest(node_id="n9"),
         grpc.StatusCode.NOT_FOUND, "'n9'"),
        ("UndrainNode", cluster_pb2.UndrainNodeRequest(node_id=""),
         grpc.StatusCode.INVALID_ARGUMENT, "node_id"),
    ],
)  # fmt: skip
def test_bad_requests_get_their_status_and_name_the_bad_value(
    cluster: OpsCluster,
    stub: cluster_pb2_grpc.ClusterServiceStub,
    method: str,
    request_: object,
    code: grpc.StatusCode,
    named: str,
) -> None:
    before = cluster.placement()
    error = rpc_error(getattr(stub, method), request_)
    assert error.code() is code and named in error.details()
    assert len(stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=30).nodes) == 3
    assert cluster.placement() == before


def test_migrate_refuses_a_bad_destination_naming_it(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub
) -> None:
    vm = cluster.vm_named("n2-vm1")
    host = cluster.placement()[vm][0]
    for node, code in (
        (host, grpc.StatusCode.FAILED_PRECONDITION),
        ("n9", grpc.StatusCode.NOT_FOUND),
    ):
        request = cluster_pb2.MigrateVmRequest(vm_uuid=vm, destination_node_id=node)
        error = rpc_error(stub.MigrateVm, request)
        assert error.code() is code and node in error.details()
