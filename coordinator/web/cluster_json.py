"""Cluster manager state as JSON: nodes, VMs, events, plans, rules (wire units, names with
units)."""

from __future__ import annotations

from typing import Any

from vmgrid.agents.cluster.decide.loop import Recommendation
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.rules.validate import rule_parts
from vmgrid.agents.cluster.state.events import ClusterEvent
from vmgrid.agents.cluster.state.state import NodeView
from vmgrid.agents.model import VmUsage
from vmgrid.solver.plan import Action

Json = dict[str, Any]


def capacity_json(capacity: Any) -> Json:
    """A node's capacity; the domain NodeCapacity and the wire one share these field names."""
    return {
        "cpu_millicores": capacity.cpu_millicores,
        "memory_bytes": capacity.memory_bytes,
        "nic_bandwidth_bps": capacity.nic_bandwidth_bps,
    }


def _stall_json(stall: Any) -> Json | None:
    """One resource's PSI figures; None when unavailable (a domain None, a wire stall with
    ``available`` false)."""
    if stall is None or not getattr(stall, "available", True):
        return None
    return {
        "some_avg10": round(stall.some_avg10, 2),
        "full_avg10": round(stall.full_avg10, 2),
        "some_total_us": stall.some_total_us,
        "full_total_us": stall.full_total_us,
    }


def pressure_json(pressure: Any) -> Json:
    """Pressure-stall information (domain Pressure or wire Pressure, or None): each resource's
    figures or null, and ``available`` false when none could be read (not zero pressure)."""
    stalls = {
        name: _stall_json(None if pressure is None else getattr(pressure, name))
        for name in ("cpu", "memory", "io")
    }
    return {"available": any(v is not None for v in stalls.values()), **stalls}


def usage_json(usage: Any) -> Json:
    """A node's usage; the domain HostUsage and the wire one share these field names."""
    return {
        "cpu_used_millicores": usage.cpu_used_millicores,
        "memory_used_bytes": usage.memory_used_bytes,
        "memory_total_bytes": usage.memory_total_bytes,
        "net_rx_bytes_per_second": usage.net_rx_bytes_per_second,
        "net_tx_bytes_per_second": usage.net_tx_bytes_per_second,
        "pressure": pressure_json(usage.pressure),
    }


def node_json(view: NodeView, cluster_id: str) -> Json:
    usage = view.usage
    return {
        "id": view.node_id,
        "cluster": cluster_id,
        "hostname": view.identity.hostname,
        "status": view.status.value,
        "draining": view.draining,
        "degraded_reason": view.degraded_reason,
        "simulated": view.identity.simulated,
        "capacity": capacity_json(view.capacity),
        "usage": None if usage is None else usage_json(usage),
        "vms": sorted(vm.uuid for vm in view.vms),
        "last_seen_unix_ms": view.last_seen_unix_ns // 1_000_000,
    }


def vm_json(
    vm: VmUsage, node_id: str, cluster_id: str, migration: Json | None, pressure: Any = None
) -> Json:
    return {
        "uuid": vm.uuid,
        "name": vm.name,
        "cluster": cluster_id,
        "node": node_id,
        "state": vm.state.value,
        "vcpus": vm.vcpus,
        "cpu_used_millicores": vm.cpu_used_millicores,
        "memory_used_bytes": vm.memory_used_bytes,
        "memory_allocated_bytes": vm.memory_allocated_bytes,
        "net_rx_bytes_per_second": vm.net_rx_bytes_per_second,
        "net_tx_bytes_per_second": vm.net_tx_bytes_per_second,
        "simulated": vm.simulated,
        "migration": migration,
        "pressure": pressure_json(pressure),
    }


def event_json(event: ClusterEvent) -> Json:
    return {
        "kind": event.kind.value,
        "cluster": event.cluster_id,
        "node": event.node_id,
        "vm": event.vm_uuid,
        "vm_state": event.vm_state.value if event.vm_state is not None else "",
        "message": event.message,
        "simulated": event.simulated,
    }


def action_json(action: Action, described: str) -> Json:
    return {
        "id": action.id,
        "kind": action.kind.value,
        "subject": action.subject,
        "src": action.src,
        "dst": action.dst,
        "start_s": action.start_s,
        "end_s": action.end_s,
        "reason": action.reason,
        "description": described,
    }


def recommendation_json(rec: Recommendation, actions: list[Json]) -> Json:
    return {
        "id": rec.plan_id,
        "summary": rec.decision.summary,
        "trigger": rec.decision.trigger.kind.value,
        "actions": actions,
    }


def rule_json(rule: Rule, names: dict[str, str], state: str = "holds", reason: str = "") -> Json:
    """A placement rule: its VMs by uuid (and name), nodes, other parameters, origin
    (``operator`` or ``job:<id>``) and whether it holds now (holds, violated, impossible)."""
    vms, nodes, parameters = rule_parts(rule)
    return {
        "id": rule.rule_id,
        "kind": rule.constraint.kind,
        "origin": rule.origin,
        "vms": list(vms),
        "vm_names": [names.get(v, v) for v in vms],
        "nodes": list(nodes),
        "parameters": parameters,
        "label": rule.constraint.label(),
        "created_at_unix_ms": int(rule.created_unix_s * 1000),
        "state": state,
        "reason": reason,
    }


def explanation_json(explanation: Any, names: dict[str, str]) -> Json:
    """Why a VM is where it is (operator/explain.py): its node, the whole text, the last
    action that placed it (or null), the rules that name it and what would move it next."""
    last = explanation.last_action
    last_json = None
    if last is not None:
        action = last.action
        last_json = {
            "plan": last.plan_id,
            "origin": last.origin,
            "kind": action.kind.value,
            "src": action.src,
            "dst": action.dst,
            "reason": action.reason,
            "state": last.state.value,
            "message": last.message,
            "at_unix_ms": int(last.at_unix_s * 1000),
        }
    return {
        "vm": explanation.vm_uuid,
        "name": explanation.vm_name,
        "node": explanation.node,
        "text": explanation.text,
        "last_action": last_json,
        "rules": [rule_json(s.rule, names, s.state, s.reason) for s in explanation.rules],
        "next": explanation.next,
    }


def n_plus_one_json(result: Any) -> Json:
    """The N+1 view: can the cluster lose each node and restart its HA VMs elsewhere?"""
    return {
        "ok": result.ok,
        "nodes": [
            {
                "node": c.node,
                "ok": c.ok,
                "vms": c.vms,
                "unplaced": list(c.unplaced),
                "reason": c.reason,
            }
            for c in result.nodes
        ],
    }
