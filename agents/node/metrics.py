"""Prometheus metrics of the node agent: its domains, its host, its reports and its commands.

Domain series follow the libvirt exporters' naming (cpu_time_seconds_total, memory_usage_bytes,
interface receive/transmit bytes_total, labelled by domain name and uuid) under the ``vmgrid_``
prefix. They are read from the agent's latest sample and report when Prometheus scrapes, so the
collection loop does no metrics work beyond one histogram observation per report. Test-driver
domains have no CPU time or interface counters (libvirt does not account them); their CPU use
is the simulated load's, in ``vmgrid_domain_cpu_used_cores``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from vmgrid.agents import model
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.hypervisor import HostSample

REPORT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class AgentCollector(Collector):
    """Reads one NodeAgent at scrape time."""

    def __init__(self, agent: NodeAgent, node_id: str) -> None:
        self._agent = agent
        self._node_id = node_id

    def collect(self) -> Iterator[Metric]:
        node = self._node_id
        up = GaugeMetricFamily(
            "vmgrid_agent_libvirt_up",
            "Whether the agent can read its hypervisor (1) or is degraded (0).",
            labels=["node"],
        )
        up.add_metric([node], 0.0 if self._agent.degraded_reason else 1.0)
        yield up
        report, sample = self._agent.last_report, self._agent.last_sample
        if report is not None:
            yield from _host_metrics(node, report.host)
            yield from _vm_metrics(report.vms)
            yield from pressure_metrics(node, report)
        if sample is not None:
            yield from _counter_metrics(sample)


def _host_metrics(node: str, host: model.HostUsage) -> Iterator[Metric]:
    figures = (
        (
            "vmgrid_node_cpu_used_cores",
            "CPU in use on the host, in cores.",
            host.cpu_used_millicores / 1000,
        ),
        ("vmgrid_node_memory_used_bytes", "Memory in use on the host.", host.memory_used_bytes),
        ("vmgrid_node_memory_total_bytes", "Memory of the host.", host.memory_total_bytes),
    )
    for name, doc, value in figures:
        family = GaugeMetricFamily(name, doc, labels=["node"])
        family.add_metric([node], value)
        yield family


def pressure_metrics(node: str, report: model.NodeReport) -> Iterator[Metric]:
    """PSI avg10 of the host and of each VM whose cgroup the agent reads; nothing for what is
    unavailable (a test-driver node, a VM in the root cgroup): absent, not zero."""
    host = GaugeMetricFamily(
        "vmgrid_node_pressure_avg10_percent",
        "Share of the last 10 s the host's tasks stalled on a resource (PSI), in percent.",
        labels=["node", "resource", "line"],
    )
    for labels, value in _stalls(report.host.pressure):
        host.add_metric([node, *labels], value)
    yield host
    names = {vm.uuid: vm.name for vm in report.vms}
    domain = GaugeMetricFamily(
        "vmgrid_domain_pressure_avg10_percent",
        "Share of the last 10 s the domain's cgroup stalled on a resource (PSI), in percent.",
        labels=["domain", "uuid", "resource", "line"],
    )
    for row in report.vm_pressure:
        for labels, value in _stalls(row.pressure):
            domain.add_metric([names.get(row.uuid, row.uuid), row.uuid, *labels], value)
    yield domain


def _stalls(pressure: model.Pressure) -> Iterator[tuple[tuple[str, str], float]]:
    for resource in ("cpu", "memory", "io"):
        stall = getattr(pressure, resource)
        if stall is not None:
            yield (resource, "some"), stall.some_avg10
            yield (resource, "full"), stall.full_avg10


def _vm_metrics(vms: tuple[model.VmUsage, ...]) -> Iterator[Metric]:
    labels = ["domain", "uuid"]
    info = InfoMetricFamily("vmgrid_domain", "Static facts of each domain.", labels=labels)
    state = GaugeMetricFamily(
        "vmgrid_domain_state", "1 for the state each domain is in.", labels=[*labels, "state"]
    )
    vcpus = GaugeMetricFamily("vmgrid_domain_virtual_cpus", "Virtual CPUs.", labels=labels)
    cpu = GaugeMetricFamily(
        "vmgrid_domain_cpu_used_cores", "CPU used over the last period, in cores.", labels=labels
    )
    used = GaugeMetricFamily(
        "vmgrid_domain_memory_usage_bytes", "Memory held by the domain.", labels=labels
    )
    maximum = GaugeMetricFamily(
        "vmgrid_domain_maximum_memory_bytes", "Memory allocated to the domain.", labels=labels
    )
    for vm in vms:
        key = [vm.name, vm.uuid]
        info.add_metric(key, {"simulated": str(vm.simulated).lower()})
        state.add_metric([*key, vm.state.value], 1.0)
        vcpus.add_metric(key, vm.vcpus)
        cpu.add_metric(key, vm.cpu_used_millicores / 1000)
        used.add_metric(key, vm.memory_used_bytes)
        maximum.add_metric(key, vm.memory_allocated_bytes)
    yield from (info, state, vcpus, cpu, used, maximum)


def _counter_metrics(sample: HostSample) -> Iterator[Metric]:
    cpu_time = CounterMetricFamily(
        "vmgrid_domain_cpu_time_seconds",
        "CPU time used by the domain (absent on the libvirt test driver).",
        labels=["domain", "uuid"],
    )
    iface = ["domain", "uuid", "interface"]
    rx = CounterMetricFamily(
        "vmgrid_domain_interface_receive_bytes", "Bytes received by the interface.", labels=iface
    )
    tx = CounterMetricFamily(
        "vmgrid_domain_interface_transmit_bytes", "Bytes sent by the interface.", labels=iface
    )
    for dom in sample.domains:
        if dom.cpu_time_ns is not None:
            cpu_time.add_metric([dom.name, dom.uuid], dom.cpu_time_ns / 1e9)
        for counters in dom.interfaces:
            rx.add_metric([dom.name, dom.uuid, counters.name], counters.rx_bytes)
            tx.add_metric([dom.name, dom.uuid, counters.name], counters.tx_bytes)
    yield from (cpu_time, rx, tx)


def command_kind(command: model.Command) -> str:
    """``MigrateCommand`` -> ``migrate``, the label of commands_total."""
    name = type(command).__name__.removesuffix("Command")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class AgentMetrics:
    """The agent's registry: the scrape-time collector plus report and command counters."""

    def __init__(self, agent: NodeAgent, node_id: str, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(AgentCollector(agent, node_id))
        self.report_seconds = Histogram(
            "vmgrid_agent_report_duration_seconds",
            "Time to sample libvirt, build a report and queue it for the manager.",
            buckets=REPORT_BUCKETS_S,
            registry=self.registry,
        )
        self.commands = Counter(
            "vmgrid_agent_commands",
            "Commands executed, by kind and outcome (succeeded or failed).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        agent.report_listeners.append(self.report_seconds.observe)
        agent.actuators.done_listeners.append(self._command_done)

    def _command_done(self, command: model.Command, result: model.CommandResult) -> None:
        self.commands.labels(command_kind(command), result.state.value).inc()
