"""Wire forms of explanations (ExplainVm) and of the N+1 view (GetNPlusOne)."""

from __future__ import annotations

from vmgrid.agents.cluster.jobs.capacity import NPlusOne
from vmgrid.agents.cluster.operator.codec import encode_action, encode_rule
from vmgrid.agents.cluster.operator.explain import Explanation
from vmgrid.agents.common.node_codec import set_timestamp_ns
from vmgrid.v1 import cluster_pb2


def encode_explanation(explanation: Explanation) -> cluster_pb2.ExplainVmResponse:
    """Rules go as RuleViolation rows whose reason starts with the rule's state (holds,
    violated, impossible)."""
    msg = cluster_pb2.ExplainVmResponse(
        vm_uuid=explanation.vm_uuid,
        vm_name=explanation.vm_name,
        node_id=explanation.node,
        text=explanation.text,
        next=explanation.next,
    )
    last = explanation.last_action
    if last is not None:
        msg.last_action.plan_id = last.plan_id
        msg.last_action.origin = last.origin
        msg.last_action.action.CopyFrom(encode_action(last.action, last.state, False, last.message))
        set_timestamp_ns(msg.last_action.at, int(last.at_unix_s * 1e9))
    for standing in explanation.rules:
        reason = standing.state + (f": {standing.reason}" if standing.reason else "")
        msg.rules.add(rule=encode_rule(standing.rule), reason=reason)
    return msg


def encode_n_plus_one(result: NPlusOne) -> cluster_pb2.GetNPlusOneResponse:
    msg = cluster_pb2.GetNPlusOneResponse(ok=result.ok)
    for check in result.nodes:
        msg.nodes.add(
            node_id=check.node,
            ok=check.ok,
            vms=check.vms,
            unplaced_vm_uuids=list(check.unplaced),
            reason=check.reason,
        )
    return msg
