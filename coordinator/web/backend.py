"""What the HTTP API needs from whatever it fronts: a cluster manager or the grid coordinator.

Every method returns JSON-ready values (dicts of str, int, float, bool, lists, None) in the
wire's units (millicores, bytes, bytes per second, bits per second). Actions the backend cannot
do raise ApiError(409) naming the component that can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from vmgrid.agents.cluster.rules.validate import RuleRequest

Json = dict[str, Any]


@dataclass(frozen=True)
class VmFilter:
    """Filters of GET /vms; empty strings match everything."""

    node: str = ""
    state: str = ""
    name: str = ""
    cluster: str = ""


class Backend(Protocol):
    """The data and actions behind the dashboard."""

    kind: str
    """"cluster" or "coordinator": the page adapts what it shows."""

    async def nodes(self) -> list[Json]: ...

    async def vms(self, where: VmFilter) -> list[Json]: ...

    async def clusters(self) -> list[Json]: ...

    async def topology(self) -> Json: ...

    async def plans(self) -> Json: ...

    async def history(self, node: str, vm: str, minutes: int) -> Json:
        """The last `minutes` of one node's or one VM's usage (exactly one of `node`, `vm`):
        ``{"node"|"vm", "minutes", "bucket_s", "buckets", "times_unix_ms", "series"}``;
        ApiError(404) naming an unknown node or VM."""
        ...

    async def timeline(self, limit: int) -> Json:
        """``{"plans": [...]}``: waiting and recent plans, newest first, each action with its
        state, progress and reason."""
        ...

    async def jobs(self) -> list[Json]:
        """Submitted jobs, newest first (empty where submission is not enabled)."""
        ...

    async def job(self, job_id: str) -> Json:
        """One job; ApiError(404) naming the id when there is none."""
        ...

    def recent_events(self, limit: int) -> list[Json]: ...

    def stream(self) -> AsyncIterator[Json]:
        """Events from now on, for server-sent events; ends when the client goes."""
        ...

    async def migrate(self, vm_uuid: str, destination: str) -> Json: ...

    async def suspend(self, vm_uuid: str) -> Json: ...

    async def resume(self, vm_uuid: str) -> Json: ...

    async def snapshot(self, vm_uuid: str, name: str) -> Json: ...

    async def drain(self, node_id: str, draining: bool) -> Json: ...

    async def forget_node(self, node_id: str) -> Json:
        """Remove a node whose agent is gone and that holds no VMs; 404 unknown, 409 refused."""
        ...

    async def forget_cluster(self, cluster_id: str) -> Json:
        """Remove a disconnected cluster without VMs from the grid; its unfinished grid moves
        fail. 404 unknown, 409 refused (or not the coordinator)."""
        ...

    async def approve(self, plan_id: str) -> Json: ...

    async def reject(self, plan_id: str) -> Json: ...

    async def rules(self) -> Json:
        """``{"rules": [...]}``: every placement rule with its origin and whether it holds."""
        ...

    async def check_rules(self) -> Json:
        """``{"violations", "impossible", "checked"}``: rules that do not hold, and why."""
        ...

    async def add_rule(self, request: RuleRequest) -> Json:
        """The stored rule; 400/404/409 naming the bad element, nothing stored then."""
        ...

    async def delete_rule(self, rule_id: str) -> Json: ...

    async def policy(self, cluster: str) -> Json:
        """The operator policy of the decision loop of `cluster` (empty: this backend's, or
        the grid's first connected cluster), with ``"cluster"``."""
        ...

    async def set_policy(self, cluster: str, values: dict[str, object]) -> Json:
        """Change keys of the policy; 400 naming the bad key or value, nothing changed then."""
        ...

    async def explain(self, vm: str) -> Json:
        """``{"vm", "name", "node", "text", "last_action", "rules", "next"}``: why the VM (uuid
        or name) is where it is and what would move it next; 404 naming an unknown VM."""
        ...

    async def n_plus_one(self) -> Json:
        """``{"ok", "nodes": [{"node", "ok", "vms", "unplaced", "reason"}]}``."""
        ...

    async def traffic(self, limit: int) -> Json:
        """``{"pairs", "external", "unavailable"}``: the `limit` heaviest measured VM pairs
        (both directions, bytes/s) with where each end runs; a cluster adds its external flows
        and the nodes that measure nothing, the grid adds cross-cluster pairs."""
        ...
