"""The operator's reads of past usage and past plans: a node's or a VM's last hour (the charts
of the dashboard, ``GET /history``, ClusterService.GetHistory) and each recent plan's actions
with their progress (the dashboard's timeline)."""

from __future__ import annotations

import time
from typing import Protocol

from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.operator.plan_views import PlanView
from vmgrid.agents.cluster.state.trend import UsageHistory
from vmgrid.agents.errors import InvalidArgument

MAX_MINUTES = 60
"""How far back a history may be asked for: the span the manager keeps."""


def check_minutes(minutes: int) -> int:
    """`minutes` when it is within 1..MAX_MINUTES; InvalidArgument naming it otherwise."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidArgument(
            f"minutes {minutes} is out of range; accepted: 1 to {MAX_MINUTES} (the span kept)"
        )
    return minutes


class PlanReads(Protocol):
    """What the timeline reads of the plan operations (operations.PlanOperations)."""

    def recent(self, limit: int = 20) -> list[PlanView]: ...

    def progress(self, plan_id: str) -> dict[int, float]: ...


class HistoryReads:
    """Past usage and plans of a running cluster manager (call from its event loop)."""

    def __init__(self, runtime: ClusterParts, plans: PlanReads) -> None:
        self._runtime = runtime
        self._plans = plans

    def usage(self, node: str = "", vm: str = "", minutes: int = MAX_MINUTES) -> UsageHistory:
        """The last `minutes` of one node (by id) or one VM (by uuid): bucket means, then the
        recent samples. InvalidArgument names a bad request; NotFound an unknown node or VM."""
        if bool(node) == bool(vm):
            given = f"node {node!r} and vm {vm!r}" if node else "neither"
            raise InvalidArgument(f"give exactly one of node or vm (got {given})")
        since = time.time_ns() - check_minutes(minutes) * 60 * 1_000_000_000
        state = self._runtime.manager.state
        if node:
            return state.node_usage_history(node, since)
        return state.vm_usage_history(vm, since)

    def timeline(self, limit: int = 20) -> list[tuple[PlanView, dict[int, float]]]:
        """Waiting plans, then the `limit` most recent journaled ones, newest first, each with
        the progress (0..1) of its actions that have started."""
        if not 1 <= limit <= 200:
            raise InvalidArgument(f"limit {limit} is out of range; accepted: 1 to 200")
        return [(view, self._plans.progress(view.plan_id)) for view in self._plans.recent(limit)]
