"""Cumulative counters to rates, between two samples of the same host.

libvirt hands out counters that only grow (CPU nanoseconds, interface bytes) until the
guest restarts, when they start again from zero. A rate needs the previous sample, so this
module keeps exactly one previous sample per VM and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.agents.node.hypervisor import DomainSample, HostCounters, HostSample


def counter_rate_per_second(previous: int, current: int, elapsed_ns: int) -> int:
    """Rate of a monotonic counter, per second, rounded down.

    A counter that went backwards was reset (the guest restarted); as Prometheus does, the
    new value is taken as the increase since the reset.
    """
    if elapsed_ns <= 0:
        return 0
    increase = current - previous if current >= previous else current
    return increase * 1_000_000_000 // elapsed_ns


def cpu_millicores(previous_ns: int, current_ns: int, elapsed_ns: int) -> int:
    """CPU time consumed per wall-clock time, in thousandths of a CPU."""
    return counter_rate_per_second(previous_ns, current_ns, elapsed_ns) // 1_000_000


def host_busy_millicores(previous: HostCounters, current: HostCounters, cpu_count: int) -> int:
    """Host CPU use from the busy/total counters, scaled to the host's CPU count."""
    total = current.cpu_total_ns - previous.cpu_total_ns
    busy = current.cpu_busy_ns - previous.cpu_busy_ns
    if total <= 0 or busy < 0:
        return 0
    return min(busy, total) * cpu_count * 1000 // total


@dataclass(frozen=True)
class DomainRates:
    """Per-second usage of one VM over the last interval; None before a second sample."""

    cpu_millicores: int | None
    net_rx_bytes_per_second: int
    net_tx_bytes_per_second: int


def domain_rates(
    previous: DomainSample | None, current: DomainSample, elapsed_ns: int
) -> DomainRates:
    """Rates of one VM; interfaces are matched by name so a hot-plugged NIC starts at zero."""
    if previous is None or elapsed_ns <= 0:
        return DomainRates(None, 0, 0)
    cpu = None
    if previous.cpu_time_ns is not None and current.cpu_time_ns is not None:
        cpu = cpu_millicores(previous.cpu_time_ns, current.cpu_time_ns, elapsed_ns)
    before = {nic.name: nic for nic in previous.interfaces}
    rx = tx = 0
    for nic in current.interfaces:
        old = before.get(nic.name)
        if old is None:
            continue
        rx += counter_rate_per_second(old.rx_bytes, nic.rx_bytes, elapsed_ns)
        tx += counter_rate_per_second(old.tx_bytes, nic.tx_bytes, elapsed_ns)
    return DomainRates(cpu, rx, tx)


class RateTracker:
    """Remembers the previous sample and yields rates for the next one."""

    def __init__(self) -> None:
        self._previous: HostSample | None = None
        self._by_uuid: dict[str, DomainSample] = {}

    def reset(self) -> None:
        """Forget history, e.g. after a reconnect to libvirt, when counters may have jumped."""
        self._previous = None
        self._by_uuid = {}

    def update(self, sample: HostSample) -> tuple[HostSample | None, dict[str, DomainRates]]:
        """Return the previous sample and the rates of every VM in ``sample``."""
        previous = self._previous
        elapsed = sample.monotonic_ns - previous.monotonic_ns if previous is not None else 0
        rates = {
            dom.uuid: domain_rates(self._by_uuid.get(dom.uuid), dom, elapsed)
            for dom in sample.domains
        }
        self._previous = sample
        self._by_uuid = {dom.uuid: dom for dom in sample.domains}
        return previous, rates
