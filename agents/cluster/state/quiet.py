"""Whether a decision cycle can find a trigger, told from two numbers kept per node.

The decision loop's trigger (decide/triggers.py, `trigger_from`) reads every live node's host
samples over the hold time: a node is above the band when every sample from the newest one at
least the hold time before its last (the anchor) up to the last is above the band's CPU top
(or its CPU pressure limit), or its VMs hold more memory than the band's top; below it when
every such sample is under the CPU floor and its memory under the floor. At 5,000 nodes that
reading takes about 0.2 s, so it runs in the forked decision process (forked.py). But a fork of
a large manager costs the manager itself: each page it writes afterwards faults once (at 5,000
nodes of 20 VMs, 60,000-70,000 faults in the first second, a few tenths of a second of CPU
and a burst of report latency), and most cycles of a cluster in its band find nothing to do.

`QuietWatch` keeps, per node, the earliest timestamp of its current run of samples under the
CPU floor (``low_since``) and of its current run above the CPU top or the pressure limit
(``high_since``), both with the trigger's own arithmetic, one comparison each per report.
`may_trigger` says False only when no live node can trigger: none in maintenance, none whose
run reaches back to its anchor's time, none whose VMs hold memory above the band's top. A False
is exact (`trigger_from` would find nothing: the anchor and every sample after it would be in
the run, whose earliest time is then at most the anchor's); the loop skips the fork. A True may
still end without a trigger (memory under the floor, a run longer than the kept window): the
decision process reads the samples as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vmgrid.agents.cluster.state.gauges import record_memory_fraction
from vmgrid.agents.cluster.state.nodes import NodeRecord, NodeStatus
from vmgrid.agents.model import HostUsage


@dataclass(frozen=True)
class QuietBand:
    """What the trigger compares samples with: the band's CPU floor and top, its memory top
    (fractions of a node) and the CPU pressure limit (percent; 0: none)."""

    cpu_low: float
    cpu_high: float
    memory_high: float
    pressure: float


def cpu_pressure(usage: HostUsage) -> float:
    """A sample's CPU pressure (some avg10, percent); -1 when the node reports none."""
    stall = usage.pressure.cpu
    return -1.0 if stall is None else stall.some_avg10


class QuietWatch:
    """Runs of each node's samples under the band's CPU floor and above its top (module)."""

    def __init__(self) -> None:
        self.band: QuietBand | None = None
        """The band the runs are kept for; None until the loop first asks."""

    def follow(self, node: NodeRecord, sent_at: int, usage: HostUsage) -> None:
        """A sample joined the node's history: extend or end its runs."""
        band = self.band
        if band is None:
            return
        cpu = usage.cpu_used_millicores / max(1, node.hello.capacity.cpu_millicores)
        since = node.low_since
        if cpu < band.cpu_low:
            node.low_since = sent_at if since is None or sent_at < since else since
        else:
            node.low_since = None
        since = node.high_since
        pressure = band.pressure
        if cpu > band.cpu_high or (pressure > 0 and pressure < cpu_pressure(usage)):
            node.high_since = sent_at if since is None or sent_at < since else since
        else:
            node.high_since = None

    def tune(self, band: QuietBand, nodes: Iterable[NodeRecord]) -> None:
        """Keep the runs for `band` from now on: every node's runs from its kept history when
        the band is new (about 0.3 s at 5,000 nodes of 60 samples; at once with no history,
        as when the loop starts)."""
        if band != self.band:
            self.band = band
            for node in nodes:  # every node: one not live now may report again any time
                self.restart(node)

    def restart(self, node: NodeRecord) -> None:
        """The node's runs from its kept history (a new band or a new capacity). A run that
        began before the oldest kept sample starts at that sample here: the trigger's anchor
        is always a kept sample, so the run still reaches back to it."""
        node.low_since = node.high_since = None
        for sent_at, usage in node.history:
            self.follow(node, sent_at, usage)

    def may_trigger(self, band: QuietBand, hold_s: float, nodes: Iterable[NodeRecord]) -> bool:
        """False only when the trigger on these nodes finds nothing (see the module)."""
        nodes = list(nodes)
        self.tune(band, nodes)
        live = [n for n in nodes if n.status is NodeStatus.CONNECTED]
        for node in live:
            if node.draining:
                return True
            if not node.history:
                continue  # no sample: no anchor
            start = node.history.last_time() - hold_s * 1e9  # as the trigger computes it
            low, high = node.low_since, node.high_since
            if high is not None and high <= start:
                return True
            if low is not None and low <= start and node.states:
                return True
        top = band.memory_high
        return any(n.history and record_memory_fraction(n) > top for n in live)
