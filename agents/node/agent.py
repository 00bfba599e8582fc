"""The node agent: the monitor and act ends of the control loop on one host.

Three things run side by side in one asyncio loop: the collector (every period, at the node's
own phase of it (cadence.py): reconnect to libvirt if needed, sample, queue a report), the
link to the manager (rpc.NodeLink), and the actuators (commands in, results out). The periodic
libvirt calls run in one thread of their own, commands' calls in asyncio's default executor;
libvirt's lifecycle events arrive on libvirt's own thread and are handed over with
``call_soon_threadsafe``, then sent at once and followed by an early report. A command that
may change VMs' states has its final result sent after a fresh report, so the manager never
acts on a result while its state still shows the node as it was before the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import grpc
from vmgrid.agents import model
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.node import footprint
from vmgrid.agents.node.actuators import Actuators
from vmgrid.agents.node.cadence import next_report_in_s, report_phase_s
from vmgrid.agents.node.collector import Collector, lifecycle_event, node_hello
from vmgrid.agents.node.config import AgentConfig
from vmgrid.agents.node.fencing import TERM_FILE, TermFence
from vmgrid.agents.node.hypervisor import (
    DomainEvent,
    HostInfo,
    HostSample,
    Hypervisor,
    HypervisorError,
    HypervisorUnavailable,
)
from vmgrid.agents.node.load import LoadSource
from vmgrid.agents.node.rpc import NodeLink, Outbox, backoff_delay_s
from vmgrid.agents.node.traffic_meter import TrafficMeter, node_traffic

log = logging.getLogger(__name__)

T = TypeVar("T")


def _libvirt_thread() -> ThreadPoolExecutor:
    """The one thread the periodic libvirt calls (connect, host info, sample, close) run in.
    asyncio.to_thread's default executor would start a new worker whenever none is idle (three
    stayed in a running agent, each with its own malloc arena, ~0.3 MB resident together);
    commands still run there, so a long migration never delays a report."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="vmgrid-libvirt")


def agent_version() -> str:
    """The installed vmgrid version, from its dist-info folder's name (importlib.metadata
    would cost the agent about 2 MB of modules for this one string)."""
    for entry in sys.path:
        with contextlib.suppress(OSError):
            for info in Path(entry or ".").glob("vmgrid-*.dist-info"):
                return info.name[len("vmgrid-") : -len(".dist-info")]
    return "unknown"


class NodeAgent:
    """One host's agent; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        config: AgentConfig,
        hypervisor: Hypervisor,
        load: LoadSource | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        settle: Callable[[], object] = footprint.settle,
    ) -> None:
        self._config = config
        self._settle = settle
        self._settle_at = time.monotonic() + footprint.SETTLE_FIRST_S
        self._settled = False
        self._hypervisor = hypervisor
        self._load = load
        self.outbox = Outbox()
        """What the link sends next: events, reports and command results, in their order."""
        self._started_unix_ns = time.time_ns()
        self._version = agent_version()
        self._info: HostInfo | None = None
        self._hello_sent: tuple[HostInfo | None] | None = None  # info of the last hello sent
        self._collector: Collector | None = None
        window = config.traffic_window_s
        self._traffic = TrafficMeter(window) if window > 0 and not hypervisor.simulated else None
        self._degraded = "not connected to libvirt yet"
        self._wake = asyncio.Event()
        self._phase_s = report_phase_s(config.node_id, config.report_period_s)  # cadence.py
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_sample: HostSample | None = None
        """The latest hypervisor sample and report, read by the metrics collector at scrape time."""
        self.last_report: model.NodeReport | None = None
        self.report_listeners: list[Callable[[float], None]] = []
        """Called with the seconds each report took to collect and queue (metrics)."""
        self._sampling = asyncio.Lock()
        self._libvirt_thread = _libvirt_thread()
        self.actuators = Actuators(hypervisor, self.outbox.put, report_first=self._report_in_order)
        self.link = NodeLink(
            target=config.manager,
            credentials=credentials,
            hello=self.hello,
            outbox=self.outbox,
            on_incoming=self._on_incoming,
            heartbeat_period_s=config.heartbeat_period_s,
            degraded_reason=lambda: self._degraded,
            fence=TermFence(config.state_dir / TERM_FILE if config.state_dir else None),
        )

    @property
    def degraded_reason(self) -> str:
        """Why the agent cannot read its hypervisor; empty when healthy."""
        return self._degraded

    def hello(self) -> model.NodeHello:
        """The hello for the next stream; without libvirt yet, a zero-capacity placeholder."""
        self._hello_sent = (self._info,)
        info = self._info or HostInfo(
            hostname=socket.gethostname(),
            uri=self._config.libvirt_uri,
            hypervisor_type=self._config.libvirt_uri.split(":", 1)[0].split("+", 1)[0],
            cpu_count=0,
            cpu_mhz=0,
            memory_mib=0,
        )
        return node_hello(
            info,
            node_id=self._config.node_id,
            nic_bandwidth_mbps=self._config.nic_bandwidth_mbps,
            migration_uri=self._config.migration_uri,
            simulated=self._config.simulated,
            peer_uri=self._config.effective_peer_uri,
            cpu_millicores=self._config.cpu_millicores,
            report_period_ms=int(self._config.report_period_s * 1000),
            started_at_unix_ns=self._started_unix_ns,
            agent_version=self._version,
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._hypervisor.subscribe(self._on_domain_event, self._on_connection)
        link: asyncio.Task[None] | None = None
        attempt = 0
        try:
            while not stop.is_set():
                if not self._hypervisor.connected:
                    attempt = 0 if await self._connect() else attempt + 1
                if link is None:  # dial once libvirt was tried, so the hello has capacity
                    link = asyncio.create_task(self.link.run(stop), name="node-link")
                if self._hypervisor.connected and self._collector is not None:
                    await self._report_once(self._collector)
                self._settle_if_due()
                period_s = self._config.report_period_s
                wait_s = next_report_in_s(time.monotonic(), period_s, self._phase_s)
                if not self._hypervisor.connected:
                    wait_s = backoff_delay_s(attempt, base_s=1.0, cap_s=30.0)
                    log.debug("retrying libvirt at %s in %.1f s", self._config.libvirt_uri, wait_s)
                await self._sleep(stop, wait_s)
        finally:
            if link is not None:
                await link
            await self.actuators.drain()
            await self._in_libvirt_thread(self._hypervisor.close)
            self._libvirt_thread.shutdown(wait=False)
            self._libvirt_thread = (
                _libvirt_thread()
            )  # a later run starts its own (threads start lazily)

    def _settle_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._settle_at:
            first = not self._settled
            self._settle_at, self._settled = now + footprint.SETTLE_PERIOD_S, True
            self._settle()
            if first:  # vmgrid-bench agent measures from here
                log.info("start-up over: memory settled")

    async def _connect(self) -> bool:
        try:
            await self._in_libvirt_thread(self._hypervisor.connect)
            info = await self._in_libvirt_thread(self._hypervisor.host_info)
        except HypervisorError as exc:
            self._set_degraded(str(exc))
            return False
        if self._collector is None:
            self._collector = Collector(
                info, self._load, self._hypervisor.simulated, self._config.host_cpu_from_guests
            )
        else:
            self._collector.reset(info)
        self._info = info
        self._set_degraded("")
        if self._hello_sent is not None and self._hello_sent != (info,):
            self.link.restart()  # the manager must see the new capacity in a fresh hello
        return True

    async def _report_once(self, collector: Collector) -> None:
        started = time.perf_counter()
        report = await self._collect(collector)
        if report is not None:
            self.outbox.put_report(report)
            for listener in self.report_listeners:
                listener(time.perf_counter() - started)

    async def _report_in_order(self) -> None:
        """A report queued ahead of the command result that follows it (see Actuators)."""
        if self._collector is not None and self._hypervisor.connected:
            report = await self._collect(self._collector)
            if report is not None:
                self.outbox.put(report)

    async def _collect(self, collector: Collector) -> model.NodeReport | None:
        """Sample and build a report; one at a time, so reports are queued in sampling order."""
        async with self._sampling:
            try:
                sample = await self._in_libvirt_thread(self._hypervisor.sample)
            except HypervisorUnavailable as exc:
                self._set_degraded(str(exc))
                return None
            except HypervisorError as exc:
                log.warning("sampling libvirt failed: %s", exc)
                return None
            report = collector.report(sample)
            meter, simulated = self._traffic, self._hypervisor.simulated
            if meter is None or simulated:  # no meter to read: says why, at once
                traffic = node_traffic(meter, sample, simulated)
            else:  # reads nftables
                traffic = await self._in_libvirt_thread(lambda: node_traffic(meter, sample, False))
            report = replace(report, traffic=traffic)
            self.last_sample, self.last_report = sample, report
            return report

    async def _in_libvirt_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._libvirt_thread, call)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self._wake.clear()

    def _set_degraded(self, reason: str) -> None:
        if reason != self._degraded:
            if reason:
                log.error("degraded: %s (retrying with backoff)", reason)
            else:
                log.info("libvirt at %s is reachable", self._config.libvirt_uri)
            self._degraded = reason
        if reason:
            self.outbox.clear_report()

    # -- callbacks -------------------------------------------------------------------------

    def _on_incoming(self, message: codec.Incoming) -> None:
        if isinstance(message, model.HelloAck):
            self._wake.set()  # a (re)connected manager gets a full report now, not next period
            return
        if isinstance(message, model.StreamError):
            log.warning("manager rejected a message: %s (%s)", message.message, message.field)
            return
        result = self.actuators.submit(message)
        self.outbox.put(result)

    def _on_domain_event(self, event: DomainEvent) -> None:
        """On libvirt's event thread: hand over to the asyncio loop and return."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._domain_event, event)

    def _domain_event(self, event: DomainEvent) -> None:
        lifecycle = lifecycle_event(event, self._hypervisor.simulated)
        if lifecycle is not None:
            self.outbox.put(lifecycle)
            self._wake.set()  # follow with a full report rather than wait for the period

    def _on_connection(self, connected: bool, reason: str) -> None:
        if self._loop is not None and not connected:
            self._loop.call_soon_threadsafe(self._lost_libvirt, reason)

    def _lost_libvirt(self, reason: str) -> None:
        self._set_degraded(reason)
        self._wake.set()
