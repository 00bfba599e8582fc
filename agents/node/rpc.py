"""The agent's end of the node link: one long-lived stream to the cluster manager.

The agent dials, sends its hello, then whatever the outbox holds (the latest report,
lifecycle events, command results) and a heartbeat whenever the stream has been quiet for a
heartbeat period. When the manager goes away the agent dials again with exponential
backoff and jitter, and begins again with a hello; nothing else is replayed except what is
still in the outbox, because a fresh full report supersedes old ones and the manager asks
again for any command result it missed (answered from the actuators' cache).

With replicated managers the target is a comma-separated list of their addresses. A standby
refuses the stream with UNAVAILABLE and names the leader in the ``vmgrid-leader`` trailing
metadata; the agent dials that address next, at once. Any other failure moves on to the next
address of the list. Commands pass the term fence (``fencing.TermFence``) before they reach
the actuators.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import grpc
import grpc.aio
from vmgrid.agents import model
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.link_stream import LEADER_METADATA
from vmgrid.agents.common.redial import next_dial_delay_s
from vmgrid.agents.identity import Role
from vmgrid.agents.node.fencing import TermFence
from vmgrid.agents.tls import server_role_options
from vmgrid.v1 import node_pb2_grpc

log = logging.getLogger(__name__)

Outgoing = model.NodeReport | model.LifecycleEvent | model.CommandResult

_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)

DEFAULT_HEARTBEAT_TIMEOUT_S = 10.0
"""The manager's heartbeat timeout until a hello ack has said it."""


def dial_target(address: str) -> str:
    """The gRPC target for a manager address: an IP literal (``10.0.0.5:7443``,
    ``[fd00::5]:7443``) gets the ``ipv4:``/``ipv6:`` scheme, so gRPC connects to it without its
    DNS resolver, whose code an agent then never touches (0.3 MB resident); a host name, or an
    address that already has a scheme, is passed as given."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        return address
    if host.startswith("[") and host.endswith("]"):
        family, literal, scheme = socket.AF_INET6, host[1:-1], "ipv6:"
    else:
        family, literal, scheme = socket.AF_INET, host, "ipv4:"
    try:
        socket.inet_pton(family, literal)
    except OSError:  # a name (or a zone-scoped IPv6 address): gRPC resolves it
        return address
    return scheme + address


def backoff_delay_s(attempt: int, base_s: float = 0.5, cap_s: float = 15.0) -> float:
    """Exponential backoff with jitter, so that agents of a restarted manager do not stampede."""
    ceiling = min(cap_s, base_s * 2 ** min(attempt, 20))
    return random.uniform(ceiling / 2, ceiling)


def link_failure_hint(details: str, secure: bool) -> str:
    """A suffix saying what a failed dial most likely means, for the operator reading the log.

    gRPC reports a refused TLS handshake as a bare "Socket closed" on the side that did not
    fail it, which says nothing about certificates; the usual causes are named here instead.
    """
    lowered = details.lower()
    if "hostname verification" in lowered:
        return (
            " (the server's certificate is not a cluster manager's: it is signed by this"
            " agent's CA but names another role; check the --manager address)"
        )
    if "handshake" in lowered or "certificate" in lowered:
        return (
            " (TLS handshake failed: the manager's certificate is not signed by the CA in this"
            " agent's tls_dir)"
        )
    if "socket closed" not in lowered:
        return ""
    if secure:
        return (
            " (the manager closed the TLS connection: it most likely refused this agent's"
            " certificate, which must be signed by the manager's CA)"
        )
    return (
        " (the manager closed a plaintext connection: it most likely serves TLS; give"
        " --tls-dir DIR instead of --insecure)"
    )


class Outbox:
    """What waits for the stream: events and results in order, and only the newest report.

    A periodic report waits in one slot and goes when nothing else does. A report put with
    `put` instead goes in order, before what is queued after it (an actuator's final result),
    and drops the older report still in the slot, so the manager never sees the VM states of
    before a command after that command's result.
    """

    def __init__(self, limit: int = 1000) -> None:
        self._queue: collections.deque[Outgoing] = collections.deque(maxlen=limit)
        self._report: model.NodeReport | None = None
        self._ready = asyncio.Event()

    def put(self, item: Outgoing) -> None:
        if isinstance(item, model.NodeReport):
            self._report = None
        self._queue.append(item)
        self._ready.set()

    def put_report(self, report: model.NodeReport) -> None:
        self._report = report
        self._ready.set()

    def clear_report(self) -> None:
        """Drop an unsent report, e.g. when a reconnect makes its figures stale."""
        self._report = None

    def unget(self, item: Outgoing) -> None:
        """Put back what a stream took but could not send, ahead of everything else."""
        if isinstance(item, model.NodeReport) and self._report is not None:
            return  # a newer report supersedes it
        self._queue.appendleft(item)
        self._ready.set()

    def pop(self) -> Outgoing | None:
        if self._queue:
            return self._queue.popleft()
        report, self._report = self._report, None
        if report is None:
            self._ready.clear()
        return report

    async def get(self, timeout_s: float) -> Outgoing | None:
        """Next message, or None after ``timeout_s`` of nothing to send."""
        item = self.pop()
        if item is not None:
            return item
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return None
        return self.pop()


class NodeLink:
    """Keeps one stream to the manager open for as long as the agent runs."""

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        hello: Callable[[], model.NodeHello],
        outbox: Outbox,
        on_incoming: Callable[[codec.Incoming], None],
        heartbeat_period_s: float,
        degraded_reason: Callable[[], str],
        fence: TermFence | None = None,
    ) -> None:
        self._targets = [t.strip() for t in target.split(",") if t.strip()]
        self._target = self._targets[0]
        self._credentials = credentials
        self._hello = hello
        self._outbox = outbox
        self._on_incoming = on_incoming
        self._heartbeat_period_s = heartbeat_period_s
        self._degraded_reason = degraded_reason
        self._restart = asyncio.Event()
        self.connected = False
        self.sessions = 0
        self.dials = 0
        """Streams opened (each dial of a manager replica)."""
        self._last_failure = ""
        self._redirected = False
        self._heartbeat_timeout_s = DEFAULT_HEARTBEAT_TIMEOUT_S
        self.silent_since = time.monotonic()
        """When the last stream a manager acknowledged ended (or the agent started)."""
        self.fence = fence or TermFence()
        """The highest leadership term seen; commands of a lower one are refused."""

    def restart(self) -> None:
        """End the current stream and dial again at once (e.g. the hello changed)."""
        self._restart.set()

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            self._restart.clear()
            acked = await self._session(stop)
            if stop.is_set():
                break
            if self._restart.is_set():
                continue
            attempt = 0 if acked else attempt + 1
            if self._redirected:
                self._redirected = False
                continue  # a standby named the leader: dial it now
            delay = backoff_delay_s(attempt)
            if len(self._targets) > 1:
                self._target = self._next_target()
                silent_s = time.monotonic() - self.silent_since
                round_ended = self._target == self._targets[0]
                delay = next_dial_delay_s(round_ended, silent_s, self._heartbeat_timeout_s)
            log.debug("redialling manager at %s in %.1f s", self._target, delay)
            await _wait(stop, delay)

    async def _session(self, stop: asyncio.Event) -> bool:
        """One stream, from dial to its end; returns whether the manager acknowledged us."""
        acked = False
        target = dial_target(self._target)
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            options = _CHANNEL_OPTIONS + server_role_options(Role.CLUSTER)
            channel = grpc.aio.secure_channel(target, self._credentials, options)
        ending = asyncio.Event()
        self.dials += 1
        reports = codec.ReportEncoder()  # per stream: lists the VMs once, then on change
        try:
            call = node_pb2_grpc.NodeLinkServiceStub(channel).Connect(
                self._requests(ending, reports)
            )
            watcher = asyncio.ensure_future(self._watch(stop, call))
            try:
                async for response in call:
                    incoming = self._decode(response)
                    if isinstance(incoming, model.HelloAck) and incoming.term < self.fence.highest:
                        log.warning(
                            "manager at %s leads with term %d, below term %d seen: a deposed "
                            "leader; trying another replica",
                            self._target,
                            incoming.term,
                            self.fence.highest,
                        )
                        break
                    if isinstance(incoming, model.HelloAck):
                        try:
                            self.fence.observe(incoming.term)
                        except OSError as exc:  # its commands are refused, saying why
                            log.error("term %d not stored: %s", incoming.term, exc)
                        acked = self.connected = True
                        if incoming.heartbeat_timeout_ms > 0:
                            self._heartbeat_timeout_s = incoming.heartbeat_timeout_ms / 1000
                        self._last_failure = ""
                        self.sessions += 1
                        log.info(
                            "connected to manager at %s (cluster %s)",
                            self._target,
                            incoming.cluster_id,
                        )
                    if incoming is None:
                        continue
                    if isinstance(incoming, model.StreamError) and incoming.field.startswith(
                        "report"
                    ):
                        reports.forget()  # the refused report's VM list does not count
                    if not isinstance(incoming, (model.HelloAck, model.StreamError)):
                        refusal = self.fence.refusal(incoming, codec.command_term(response))
                        if refusal is not None:
                            self._outbox.put(refusal)
                            continue
                    self._on_incoming(incoming)
            finally:
                watcher.cancel()
        except asyncio.CancelledError:
            if not (stop.is_set() or self._restart.is_set()):
                raise  # cancelled from outside, not by our own watcher
        except grpc.aio.AioRpcError as exc:
            if self._follow_leader(exc):
                return acked
            if not stop.is_set() and not self._restart.is_set():
                details = " ".join((exc.details() or exc.code().name).split())
                level = logging.DEBUG if details == self._last_failure else logging.WARNING
                if exc.code() is grpc.StatusCode.PERMISSION_DENIED:
                    log.log(level, "manager at %s refused this agent: %s", self._target, details)
                elif acked:  # the stream was up: the manager went away, TLS is not the cause
                    log.log(level, "manager at %s went away: %s", self._target, details)
                else:
                    hint = link_failure_hint(details, secure=self._credentials is not None)
                    log.log(level, "manager at %s unreachable: %s%s", self._target, details, hint)
                self._last_failure = details
        finally:
            if acked:
                self.silent_since = time.monotonic()
            self.connected = False
            ending.set()
            await channel.close(grace=None)
        return acked

    def _next_target(self) -> str:
        """The manager address after the current one in the list (the first after a
        redirect to an address outside the list)."""
        if self._target not in self._targets:
            return self._targets[0]
        return self._targets[(self._targets.index(self._target) + 1) % len(self._targets)]

    def _follow_leader(self, exc: grpc.aio.AioRpcError) -> bool:
        """Whether `exc` is a standby's redirect; if so the next dial goes to the leader."""
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:
            return False
        leader = next(
            (str(v) for k, v in exc.trailing_metadata() or () if k == LEADER_METADATA), ""
        )
        if not leader or leader == self._target:
            return False
        log.info("manager at %s is a standby; the leader is at %s", self._target, leader)
        self._target = leader
        self._redirected = True
        return True

    async def _watch(self, stop: asyncio.Event, call: grpc.aio.StreamStreamCall) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._restart.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            call.cancel()
        finally:
            for wait in waits:
                wait.cancel()

    def _decode(self, response: codec.Response) -> codec.Incoming | None:
        try:
            return codec.response_from_wire(response)
        except Exception as exc:  # a bad message must not end the agent
            log.warning("ignoring a message from the manager: %s", exc)
        return None

    async def _requests(
        self, ending: asyncio.Event, reports: codec.ReportEncoder
    ) -> AsyncIterator[codec.Request]:
        yield codec.hello_to_wire(self._hello())
        sent = beats = 0
        while not ending.is_set():
            item = await self._outbox.get(self._heartbeat_period_s)
            if ending.is_set():
                # This stream died while it waited: what it took belongs to the next one.
                if item is not None:
                    self._outbox.unget(item)
                return
            if item is None:
                beats += 1
                beat = model.Heartbeat(time.time_ns(), beats)
                yield codec.heartbeat_to_wire(beat, self._degraded_reason())
            elif isinstance(item, model.NodeReport):
                sent += 1
                yield codec.report_to_wire(replace(item, sequence=sent), reports)
            elif isinstance(item, model.LifecycleEvent):
                yield codec.lifecycle_to_wire(item)
            else:
                yield codec.result_to_wire(item)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
