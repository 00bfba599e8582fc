"""Prometheus metrics of a cluster manager: its nodes and VMs, its decisions and their plans.

Levels (nodes by status, VMs by state, per-node load, connected agents, pending approvals,
migrations in flight) are read from the manager's state when Prometheus scrapes, and so are
the reports applied and their latency histogram (from the manager's ingest recorder: nothing
is updated per report). Decisions taken and plan actions ended are counted by listeners the
runtime calls as they happen; each is one counter increment or histogram observation.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from vmgrid.agents.cluster.act.executor import ExecutionEvent
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.decide.control import Decision, needs_approval
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import NodeLoad, NodeStatus
from vmgrid.agents.model import VmState
from vmgrid.solver.plan import ActionKind

if TYPE_CHECKING:
    from vmgrid.agents.cluster.service.runtime import ClusterRuntime

SOLVE_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def decision_outcome(decision: Decision, runtime: ClusterRuntime) -> str:
    """``no_plan``, ``awaiting_approval`` or ``started``: the label of decisions_total."""
    if decision.plan is None:
        return "no_plan"
    if needs_approval(decision, runtime.loop.config.automation):
        return "awaiting_approval"
    return "started"


class ClusterCollector(Collector):
    """Reads one ClusterManager (and, when attached, its runtime) at scrape time."""

    def __init__(self, manager: ClusterManager) -> None:
        self._manager = manager
        self.runtime: ClusterRuntime | None = None
        self.migrations_in_flight: set[tuple[str, int]] = set()

    def collect(self) -> Iterator[Metric]:
        views = self._manager.state.loads()
        nodes = GaugeMetricFamily("vmgrid_cluster_nodes", "Nodes by status.", labels=["status"])
        statuses = Tally(v.status for v in views)
        for status in NodeStatus:
            nodes.add_metric([status.value], statuses[status])
        vms = GaugeMetricFamily("vmgrid_cluster_vms", "VMs by state.", labels=["state"])
        states = Tally(state for v in views for state in v.vm_states)
        for state in VmState:
            vms.add_metric([state.value], states[state])
        yield nodes
        yield vms
        yield from self._ingest()
        yield from self._node_load(views)
        yield from _node_pressure(views)
        yield _gauge(
            "vmgrid_cluster_connected_agents",
            "Open agent streams.",
            self._manager.session_count,
        )
        yield _gauge(
            "vmgrid_cluster_migrations_in_flight",
            "Migrations of running plans that have started and not ended.",
            len(self.migrations_in_flight),
        )
        pending = len(self.runtime.loop.pending) if self.runtime is not None else 0
        yield _gauge("vmgrid_cluster_pending_approvals", "Plans waiting for an operator.", pending)
        yield _gauge(
            "vmgrid_cluster_leading",
            "1 while this manager may act (a single replica, or the leader with a live etcd "
            "lease); 0 on a standby replica.",
            int(self._manager.leading()),
        )
        yield _gauge(
            "vmgrid_cluster_leader_term",
            "Leadership term stamped on commands (0: single replica or not leading yet).",
            self._manager.term,
        )
        yield _gauge(
            "vmgrid_cluster_no_new_decisions",
            "1 after this replica lost its etcd lease (quorum lost or etcd cut off): it starts "
            "no action until etcd answers, then restarts as a candidate; 0 otherwise.",
            int(self.runtime is not None and self.runtime.no_new_decisions),
        )
        yield self._rules()
        if self.runtime is not None:
            yield from _policy_and_errors(self.runtime)

    def _ingest(self) -> Iterator[Metric]:
        ingest = self._manager.ingest
        yield CounterMetricFamily(
            "vmgrid_cluster_ingest_reports", "Agent reports applied.", value=ingest.applied_total
        )
        yield HistogramMetricFamily(
            "vmgrid_cluster_ingest_latency_seconds",
            "From an agent sending a report to the manager applying it (clocks may differ).",
            buckets=[
                ("+Inf" if ms == float("inf") else repr(ms / 1000), count)
                for ms, count in ingest.applied_buckets()
            ],
            sum_value=ingest.latency_sum_ms / 1000,
        )

    def _rules(self) -> Metric:
        """Placement rules by state: ``holds``, ``violated`` (the placement breaks it now) or
        ``impossible`` (a decider reported it cannot be kept)."""
        family = GaugeMetricFamily(
            "vmgrid_cluster_rules", "Placement rules by state.", labels=["state"]
        )
        store = self._manager.state.rules
        rules = store.rules()
        impossible = [r for r in rules if r.rule_id in store.impossible]
        kept = [r for r in rules if r.rule_id not in store.impossible]
        violated = len(violations(kept, to_model(self._manager.state.snapshot()))) if kept else 0
        family.add_metric(["holds"], len(kept) - violated)
        family.add_metric(["violated"], violated)
        family.add_metric(["impossible"], len(impossible))
        return family

    def _node_load(self, views: list[NodeLoad]) -> Iterator[Metric]:
        specs = (
            ("vmgrid_cluster_node_cpu_used_cores", "CPU in use on the node, in cores."),
            ("vmgrid_cluster_node_cpu_capacity_cores", "CPU of the node, in cores."),
            ("vmgrid_cluster_node_memory_used_bytes", "Memory in use on the node."),
            ("vmgrid_cluster_node_memory_capacity_bytes", "Memory of the node."),
            ("vmgrid_cluster_node_vms", "VMs on the node, in any state."),
        )
        families = [GaugeMetricFamily(name, doc, labels=["node"]) for name, doc in specs]
        for view in views:
            usage = view.usage
            values = (
                usage.cpu_used_millicores / 1000 if usage else 0.0,
                view.capacity.cpu_millicores / 1000,
                usage.memory_used_bytes if usage else 0,
                view.capacity.memory_bytes,
                len(view.vm_states),
            )
            for family, value in zip(families, values, strict=True):
                family.add_metric([view.node_id], value)
        yield from families


def _node_pressure(views: list[NodeLoad]) -> Iterator[Metric]:
    """PSI of each node: avg10 per resource and line (some/full), only where the agent reads
    it; ``..._pressure_available`` says which nodes do (0: unknown, not zero pressure)."""
    avg10 = GaugeMetricFamily(
        "vmgrid_cluster_node_pressure_avg10_percent",
        "Share of the last 10 s the node's tasks stalled on a resource (PSI), in percent.",
        labels=["node", "resource", "line"],
    )
    available = GaugeMetricFamily(
        "vmgrid_cluster_node_pressure_available",
        "1 when the node's agent reports pressure-stall information, 0 when it cannot.",
        labels=["node"],
    )
    for view in views:
        pressure = view.usage.pressure if view.usage is not None else None
        available.add_metric([view.node_id], 1 if pressure and pressure.available else 0)
        if pressure is None:
            continue
        for resource in ("cpu", "memory", "io"):
            stall = getattr(pressure, resource)
            if stall is not None:
                avg10.add_metric([view.node_id, resource, "some"], stall.some_avg10)
                avg10.add_metric([view.node_id, resource, "full"], stall.full_avg10)
    yield avg10
    yield available


ETCD_ERRORS = ("unavailable", "watch_broken", "fenced", "unreadable")
"""The kinds of etcd errors counted (EtcdClient.errors), each exported from 0 on."""


def _policy_and_errors(runtime: ClusterRuntime) -> Iterator[Metric]:
    """The operator policy's band (alerts compare each node's load to its top) and the errors
    of the plan journal and, on a replicated manager, of etcd (alerts fire on an increase)."""
    policy = runtime.loop.config.operator_policy
    band = GaugeMetricFamily(
        "vmgrid_cluster_policy_band_ratio",
        "The operator policy's target utilisation band: a fraction of each node's capacity "
        "(edge high: nodes above it are relieved and never packed above it).",
        labels=["resource", "edge"],
    )
    for resource, low, high in (
        ("cpu", policy.cpu_low, policy.cpu_high),
        ("memory", policy.memory_low, policy.memory_high),
    ):
        band.add_metric([resource, "low"], low)
        band.add_metric([resource, "high"], high)
    yield band
    yield CounterMetricFamily(
        "vmgrid_cluster_quiet_cycles",
        "Decision cycles that ended in the manager because no node could trigger (no snapshot "
        "taken, no decision process forked).",
        value=runtime.loop.quiet_cycles,
    )
    yield CounterMetricFamily(
        "vmgrid_cluster_journal_errors",
        "SQLite statements of the plan journal that failed.",
        value=runtime.journal.errors,
    )
    if runtime.replica is not None:
        etcd = CounterMetricFamily(
            "vmgrid_cluster_etcd_errors",
            "etcd errors of this replica: calls no member answered (unavailable), watches "
            "that broke, writes refused by the leader fence, entries that could not be read.",
            labels=["error"],
        )
        errors = runtime.replica.client.errors
        for kind in ETCD_ERRORS:
            etcd.add_metric([kind], errors[kind])
        yield etcd


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class ClusterMetrics:
    """The manager's registry; ``attach_runtime`` adds decisions and plan execution."""

    def __init__(self, manager: ClusterManager, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self._collector = ClusterCollector(manager)
        self.registry.register(self._collector)
        self.decisions = Counter(
            "vmgrid_cluster_decisions",
            "Decisions of the control loop, by trigger and outcome.",
            ["trigger", "outcome"],
            registry=self.registry,
        )
        self.decide_seconds = Histogram(
            "vmgrid_cluster_solve_duration_seconds",
            "Time to decide a reconfiguration (solver included).",
            buckets=SOLVE_BUCKETS_S,
            registry=self.registry,
        )
        self.plan_actions = Counter(
            "vmgrid_cluster_plan_actions",
            "Plan actions that ended, by type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )

    def attach_runtime(self, runtime: ClusterRuntime) -> None:
        """Count the runtime's decisions and plan actions, and show its pending approvals."""
        self._collector.runtime = runtime
        runtime.loop.decision_listeners.append(
            lambda decision, seconds: self.decision_taken(decision, seconds, runtime)
        )
        runtime.executor.add_listener(self.action_event)

    def decision_taken(self, decision: Decision, seconds: float, runtime: ClusterRuntime) -> None:
        outcome = decision_outcome(decision, runtime)
        self.decisions.labels(decision.trigger.kind.value, outcome).inc()
        self.decide_seconds.observe(seconds)

    def action_event(self, event: ExecutionEvent) -> None:
        key = (event.plan_id, event.action.id)
        if event.action.kind is ActionKind.MIGRATE:
            if event.state is ActionState.RUNNING:
                self._collector.migrations_in_flight.add(key)
            else:
                self._collector.migrations_in_flight.discard(key)
        if event.state.final:
            self.plan_actions.labels(event.action.kind.value, event.state.value).inc()
