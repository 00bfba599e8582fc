"""ClusterService's operator RPCs: each one decodes, calls `OperatorApi`, encodes.

A mixin of `ClusterServicer` (rpc.py) so that the operator surface lives in its own module.
Every VmgridError becomes its gRPC status with the error's one-line message; nothing is
changed in the manager by a refused request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import grpc
import grpc.aio
from vmgrid.agents.cluster.operator import codec as view_codec
from vmgrid.agents.cluster.operator import insight_codec
from vmgrid.agents.cluster.operator.operations import OperatorApi
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.errors import Unimplemented, VmgridError
from vmgrid.agents.model import CommandResult, CommandState
from vmgrid.agents.rpc_status import abort_with
from vmgrid.v1 import cluster_pb2 as pb

T = TypeVar("T")
Ctx: TypeAlias = grpc.aio.ServicerContext


class OperatorRpcMixin:
    """Plans, migrations, suspend/resume, snapshots, drain and rules over an `OperatorApi`."""

    _operator: OperatorApi | None = None

    def _api(self) -> OperatorApi:
        if self._operator is None:
            raise Unimplemented(
                "this manager runs without a runtime (no executor or decision loop); "
                "operator actions need vmgrid-cluster's full runtime"
            )
        return self._operator

    async def _do(self, context: Ctx, call: Callable[[OperatorApi], T]) -> T:
        try:
            return call(self._api())
        except VmgridError as exc:
            await abort_with(context, exc)

    async def _await(self, context: Ctx, call: Callable[[OperatorApi], Awaitable[T]]) -> T:
        try:
            return await call(self._api())
        except VmgridError as exc:
            await abort_with(context, exc)

    async def PlanReconfiguration(  # noqa: N802
        self, request: pb.PlanReconfigurationRequest, context: Ctx
    ) -> pb.PlanReconfigurationResponse:
        view = await self._await(
            context,
            lambda op: op.plans.propose(
                request.objective, tuple(request.drain_node_ids), request.time_limit_ms
            ),
        )
        return pb.PlanReconfigurationResponse(plan=view_codec.encode_plan(view))

    async def ListPlans(self, request: pb.ListPlansRequest, context: Ctx) -> pb.ListPlansResponse:  # noqa: N802
        views = await self._do(context, lambda op: op.plans.recent(request.limit))
        return pb.ListPlansResponse(plans=[view_codec.encode_plan(v) for v in views])

    async def ApplyPlan(self, request: pb.ApplyPlanRequest, context: Ctx) -> pb.ApplyPlanResponse:  # noqa: N802
        view = await self._do(context, lambda op: op.plans.apply(request.plan_id))
        return pb.ApplyPlanResponse(plan=view_codec.encode_plan(view))

    async def CancelPlan(  # noqa: N802
        self, request: pb.CancelPlanRequest, context: Ctx
    ) -> pb.CancelPlanResponse:
        view = await self._do(context, lambda op: op.plans.cancel(request.plan_id))
        return pb.CancelPlanResponse(plan=view_codec.encode_plan(view))

    async def ApprovePlan(  # noqa: N802
        self, request: pb.ApprovePlanRequest, context: Ctx
    ) -> pb.ApprovePlanResponse:
        view = await self._do(context, lambda op: op.plans.approve(request.plan_id))
        return pb.ApprovePlanResponse(plan=view_codec.encode_plan(view))

    async def RejectPlan(  # noqa: N802
        self, request: pb.RejectPlanRequest, context: Ctx
    ) -> pb.RejectPlanResponse:
        view = await self._do(context, lambda op: op.plans.reject(request.plan_id, request.reason))
        return pb.RejectPlanResponse(plan=view_codec.encode_plan(view))

    async def MigrateVm(self, request: pb.MigrateVmRequest, context: Ctx) -> pb.MigrateVmResponse:  # noqa: N802
        view = await self._await(
            context,
            lambda op: op.plans.migrate(
                request.vm_uuid, request.destination_node_id, request.command_id
            ),
        )
        simulated = any(a.simulated for a in view.actions)
        result = CommandResult(
            command_id=f"{view.plan_id}/0/0",
            state=CommandState.ACCEPTED,
            message=view.summary,
            simulated=simulated,
            vm_uuid=request.vm_uuid,
        )
        return pb.MigrateVmResponse(
            result=codec.encode_command_result(result), plan=view_codec.encode_plan(view)
        )

    async def SuspendVm(self, request: pb.SuspendVmRequest, context: Ctx) -> pb.SuspendVmResponse:  # noqa: N802
        result = await self._await(
            context, lambda op: op.vms.suspend(request.vm_uuid, request.command_id)
        )
        return pb.SuspendVmResponse(result=codec.encode_command_result(result))

    async def ResumeVm(self, request: pb.ResumeVmRequest, context: Ctx) -> pb.ResumeVmResponse:  # noqa: N802
        result = await self._await(
            context, lambda op: op.vms.resume(request.vm_uuid, request.command_id)
        )
        return pb.ResumeVmResponse(result=codec.encode_command_result(result))

    async def CreateSnapshot(  # noqa: N802
        self, request: pb.CreateSnapshotRequest, context: Ctx
    ) -> pb.CreateSnapshotResponse:
        result = await self._await(
            context,
            lambda op: op.vms.create_snapshot(
                request.vm_uuid, request.snapshot_name, request.description, request.command_id
            ),
        )
        return pb.CreateSnapshotResponse(result=codec.encode_command_result(result))

    async def ListSnapshots(  # noqa: N802
        self, request: pb.ListSnapshotsRequest, context: Ctx
    ) -> pb.ListSnapshotsResponse:
        names = await self._await(context, lambda op: op.vms.list_snapshots(request.vm_uuid))
        return pb.ListSnapshotsResponse(snapshot_names=list(names))

    async def RevertSnapshot(  # noqa: N802
        self, request: pb.RevertSnapshotRequest, context: Ctx
    ) -> pb.RevertSnapshotResponse:
        result = await self._await(
            context,
            lambda op: op.vms.revert_snapshot(
                request.vm_uuid, request.snapshot_name, request.command_id
            ),
        )
        return pb.RevertSnapshotResponse(result=codec.encode_command_result(result))

    async def DeleteSnapshot(  # noqa: N802
        self, request: pb.DeleteSnapshotRequest, context: Ctx
    ) -> pb.DeleteSnapshotResponse:
        result = await self._await(
            context,
            lambda op: op.vms.delete_snapshot(
                request.vm_uuid, request.snapshot_name, request.command_id
            ),
        )
        return pb.DeleteSnapshotResponse(result=codec.encode_command_result(result))

    async def DrainNode(self, request: pb.DrainNodeRequest, context: Ctx) -> pb.DrainNodeResponse:  # noqa: N802
        view = await self._do(context, lambda op: op.vms.drain(request.node_id))
        return pb.DrainNodeResponse(node=view_codec.encode_node_info(view))

    async def UndrainNode(  # noqa: N802
        self, request: pb.UndrainNodeRequest, context: Ctx
    ) -> pb.UndrainNodeResponse:
        view = await self._do(context, lambda op: op.vms.undrain(request.node_id))
        return pb.UndrainNodeResponse(node=view_codec.encode_node_info(view))

    async def ForgetNode(
        self, request: pb.ForgetNodeRequest, context: Ctx
    ) -> pb.ForgetNodeResponse:  # noqa: N802
        node_id = await self._do(context, lambda op: op.vms.forget(request.node_id))
        return pb.ForgetNodeResponse(node_id=node_id)

    async def ListRules(self, request: pb.ListRulesRequest, context: Ctx) -> pb.ListRulesResponse:  # noqa: N802
        rules = await self._do(context, lambda op: op.rules.list(request.origin))
        return pb.ListRulesResponse(rules=[view_codec.encode_rule(r) for r in rules])

    async def AddRule(self, request: pb.AddRuleRequest, context: Ctx) -> pb.AddRuleResponse:  # noqa: N802
        rule = await self._do(
            context, lambda op: op.rules.add(view_codec.decode_rule_request(request.rule))
        )
        return pb.AddRuleResponse(rule=view_codec.encode_rule(rule))

    async def DeleteRule(  # noqa: N802
        self, request: pb.DeleteRuleRequest, context: Ctx
    ) -> pb.DeleteRuleResponse:
        rule = await self._do(context, lambda op: op.rules.delete(request.rule_id))
        return pb.DeleteRuleResponse(rule=view_codec.encode_rule(rule))

    async def CheckRules(  # noqa: N802
        self, request: pb.CheckRulesRequest, context: Ctx
    ) -> pb.CheckRulesResponse:
        check = await self._do(context, lambda op: op.rules.check())
        return pb.CheckRulesResponse(
            violations=[view_codec.encode_violation(v) for v in check.violations],
            impossible=[view_codec.encode_violation(v) for v in check.impossible],
            rules_checked=check.checked,
        )

    async def GetPolicy(self, request: pb.GetPolicyRequest, context: Ctx) -> pb.GetPolicyResponse:  # noqa: N802
        policy = await self._do(context, lambda op: op.policy.get())
        return pb.GetPolicyResponse(policy=view_codec.encode_policy(policy))

    async def SetPolicy(self, request: pb.SetPolicyRequest, context: Ctx) -> pb.SetPolicyResponse:  # noqa: N802
        changes = dict(request.values)
        policy = await self._do(context, lambda op: op.policy.set(changes))
        return pb.SetPolicyResponse(policy=view_codec.encode_policy(policy))

    async def ExplainVm(self, request: pb.ExplainVmRequest, context: Ctx) -> pb.ExplainVmResponse:  # noqa: N802
        explanation = await self._await(context, lambda op: op.insight.explain(request.vm_uuid))
        return insight_codec.encode_explanation(explanation)

    async def GetNPlusOne(  # noqa: N802
        self, request: pb.GetNPlusOneRequest, context: Ctx
    ) -> pb.GetNPlusOneResponse:
        result = await self._await(context, lambda op: op.insight.n_plus_one())
        return insight_codec.encode_n_plus_one(result)

    async def GetHistory(  # noqa: N802
        self, request: pb.GetHistoryRequest, context: Ctx
    ) -> pb.GetHistoryResponse:
        found = await self._do(
            context,
            lambda op: op.history.usage(request.node_id, request.vm_uuid, request.minutes or 60),
        )
        return view_codec.encode_history(found)
