"""The cluster manager core: node sessions, report ingestion and commands to nodes.

Transport-free: the rpc layer decodes wire messages and calls ``open_session`` and the
``handle_*`` methods; what a session must send back (hello ack, rejections, commands) is put
on its outbox as domain values, which the rpc layer encodes and writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from vmgrid.agents.cluster.link.stats import IngestRecorder
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus
from vmgrid.agents.common.node_codec import encode_command
from vmgrid.agents.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    MalformedMessage,
    Unavailable,
)
from vmgrid.agents.model import (
    Command,
    CommandResult,
    Heartbeat,
    HelloAck,
    LifecycleEvent,
    NodeHello,
    NodeReport,
    StreamError,
)
from vmgrid.agents.report_rows import ReportRows

MANAGER_VERSION = "0.1.0"
NO_STREAM = 0
"""Connection id of a node known only from the leader's view (a standby replica's warm view,
``service/warm_view.py``): no agent stream yet. Streams are numbered from 1."""
OutboxItem = HelloAck | StreamError | Command | None  # None closes the stream
ProgressCallback = Callable[[CommandResult], None]


class LinkSettings(Protocol):
    """What the node links need of the manager's configuration (``ClusterConfig`` has it)."""

    @property
    def cluster_id(self) -> str: ...
    @property
    def report_period_ms(self) -> int: ...
    @property
    def heartbeat_timeout_ms(self) -> int: ...
    @property
    def history_window(self) -> int: ...


@dataclass(eq=False)
class NodeSession:
    """One agent stream. ``outbox`` holds what the rpc layer must write to it."""

    node_id: str
    connection_id: int
    outbox: asyncio.Queue[OutboxItem] = field(default_factory=asyncio.Queue)


@dataclass(eq=False)
class _Pending:
    node_id: str
    command: Command
    future: asyncio.Future[CommandResult]
    on_progress: ProgressCallback | None


class ClusterManager:
    """State, sessions and commands of one cluster; use from one event loop."""

    def __init__(self, config: LinkSettings, result_cache_size: int = 10000) -> None:
        self.config = config
        self.bus = EventBus(config.cluster_id)
        self.state = ClusterState(
            self.bus,
            history_window=config.history_window,
            heartbeat_timeout_s=config.heartbeat_timeout_ms / 1000,
        )
        self.ingest = IngestRecorder()
        self._connection_ids = itertools.count(1)
        self._sessions: dict[str, NodeSession] = {}
        self._pending: dict[str, _Pending] = {}
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._result_cache_size = result_cache_size
        self.term = 0
        """Leadership term stamped on hello acks and commands (0: a single replica)."""
        self.leading: Callable[[], bool] = lambda: True
        """Whether this manager may send commands: false on a standby replica and on a leader
        whose etcd lease may have lapsed (the fence on the manager's side)."""
        self.before_command: Callable[[], Awaitable[None]] | None = None
        """Awaited before any command is sent: a replicated leader writes its journal through
        to etcd there, so no command runs ahead of the record that it was started."""
        self.session_hooks: list[Callable[[NodeSession], None]] = []
        """Called on each new agent stream after the hello ack, before resent commands."""

    # ---- sessions -------------------------------------------------------------------------

    def open_session(self, hello: NodeHello) -> NodeSession:
        """Register an agent stream; a newer stream for the same node replaces the older."""
        node_id = hello.identity.node_id
        session = NodeSession(node_id, next(self._connection_ids))
        known = self.state.node_connected(hello, session.connection_id)
        old = self._sessions.get(node_id)
        if old is not None:
            old.outbox.put_nowait(None)
        self._sessions[node_id] = session
        session.outbox.put_nowait(
            HelloAck(
                cluster_id=self.config.cluster_id,
                manager_version=MANAGER_VERSION,
                report_period_ms=self.config.report_period_ms,
                heartbeat_timeout_ms=self.config.heartbeat_timeout_ms,
                known_node=known,
                term=self.term,
            )
        )
        for hook in self.session_hooks:
            hook(session)
        for pending in self._pending.values():
            if pending.node_id == node_id:
                session.outbox.put_nowait(pending.command)
        return session

    def close_session(self, session: NodeSession) -> None:
        """Forget a finished stream (the node is marked lost only by the heartbeat timeout)."""
        if self._sessions.get(session.node_id) is session:
            del self._sessions[session.node_id]

    def end_sessions(self) -> int:
        """End every agent stream (their agents dial again: a replica that no longer leads
        sends them on to the leader); returns how many were open."""
        sessions = list(self._sessions.values())
        for session in sessions:
            session.outbox.put_nowait(None)
        return len(sessions)

    def forget_node(self, node_id: str) -> None:
        """Remove a node whose agent is gone and that holds no VMs (ClusterState.forget_node);
        FailedPrecondition while an agent stream of it is open."""
        if node_id in self._sessions:
            raise FailedPrecondition(f"node {node_id!r} is connected; stop its agent first")
        self.state.forget_node(node_id)

    def has_stream(self, node_id: str) -> bool:
        """True while an agent stream of `node_id` is open to this manager."""
        return node_id in self._sessions

    @property
    def session_count(self) -> int:
        """Open agent streams, one per connected node."""
        return len(self._sessions)

    def is_current(self, session: NodeSession) -> bool:
        """False for a stream superseded by a newer connection of the same node."""
        return self._sessions.get(session.node_id) is session

    # ---- agent messages -------------------------------------------------------------------

    def handle_report(self, session: NodeSession, report: NodeReport | ReportRows) -> None:
        """Apply a report and record its latency (now - sent_at)."""
        if self._sessions.get(session.node_id) is not session:
            return
        if self.state.apply_report(session.node_id, report) and report.sent_at_unix_ns:
            latency_ms = (time.time_ns() - report.sent_at_unix_ns) / 1e6
            vms = len(report.vms) if isinstance(report, NodeReport) else len(report.uuids)
            self.ingest.record(latency_ms, vms)

    def handle_heartbeat(self, session: NodeSession, beat: Heartbeat | None = None) -> None:
        """Record life from the node, and whether its agent can read its hypervisor."""
        if self.is_current(session):
            self.state.touch(session.node_id)
            if beat is not None:
                self.state.set_degraded(session.node_id, beat.degraded_reason)

    def handle_lifecycle(self, session: NodeSession, event: LifecycleEvent) -> None:
        """Publish a VM lifecycle event."""
        if self.is_current(session):
            self.state.apply_lifecycle(session.node_id, event)

    def handle_result(self, session: NodeSession, result: CommandResult) -> None:
        """Progress or outcome of a command: cache final results, wake the waiter."""
        self.state.touch(session.node_id)
        pending = self._pending.get(result.command_id)
        if pending is not None and pending.on_progress is not None:
            pending.on_progress(result)
        if not result.is_final:
            return
        self._remember(result)
        self.bus.publish(
            EventKind.COMMAND_RESULT,
            node_id=session.node_id,
            command_id=result.command_id,
            simulated=result.simulated,
            message=f"{result.state.value}: {result.message}",
        )
        if pending is not None:
            del self._pending[result.command_id]
            if not pending.future.done():
                pending.future.set_result(result)

    def reject(self, session: NodeSession, error: MalformedMessage, sequence: int = 0) -> None:
        """Tell the agent which value was bad; the stream and the state stay as they were."""
        self.ingest.rejected_total += 1
        session.outbox.put_nowait(StreamError(str(error), error.field, sequence))

    # ---- commands -------------------------------------------------------------------------

    def _remember(self, result: CommandResult) -> None:
        self._results[result.command_id] = result
        self._results.move_to_end(result.command_id)
        while len(self._results) > self._result_cache_size:
            self._results.popitem(last=False)

    def cached_result(self, command_id: str) -> CommandResult | None:
        """Final result of a finished command id, if still cached."""
        return self._results.get(command_id)

    async def send_command(
        self,
        node_id: str,
        command: Command,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> CommandResult:
        """Send a command to a node and wait for its final result.

        Idempotent by ``command.command_id``: a finished id returns its cached result without
        resending; an id still in flight is awaited, not sent again. Pending commands are
        resent when the node reconnects (the agent dedupes them by id). A command whose
        values its wire message cannot hold raises UnencodableCommand (a ValueError naming the
        field) before anything is queued, so the node's stream is never broken by it.
        """
        if self.before_command is not None:
            await self.before_command()
        cached = self._results.get(command.command_id)
        if cached is not None:
            return cached
        pending = self._pending.get(command.command_id)
        if pending is None:
            if not self.leading():
                raise Unavailable(
                    f"command {command.command_id!r} on node {node_id!r} not sent: this "
                    "manager does not lead its cluster (term ended or standby replica)"
                )
            encode_command(command)  # UnencodableCommand here, never on the node's stream
            session = self._sessions.get(node_id)
            # A node known from the warm view of a replica that just took over: the command
            # waits for its agent's stream (open_session sends it), like a resent one.
            awaited = session is None and self.state.is_current(node_id, NO_STREAM)
            if (session is None and not awaited) or (
                self.state.node_status(node_id) is NodeStatus.LOST
            ):
                raise Unavailable(f"node {node_id!r} has no live agent stream; retry later")
            future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
            pending = _Pending(node_id, command, future, on_progress)
            self._pending[command.command_id] = pending
            if session is not None:
                session.outbox.put_nowait(command)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"command {command.command_id!r} on node {node_id!r}: no final result "
                f"within {timeout_s} s (still pending; await the same id again)"
            ) from None

    def fail_pending(self, node_id: str, reason: str) -> int:
        """Fail every command still awaiting a result from `node_id` with Unavailable(reason)
        and never resend them: the node is fenced, so they can never run (the plans that wait
        on them end, and release their VMs). Returns how many there were."""
        ids = [cid for cid, p in self._pending.items() if p.node_id == node_id]
        for command_id in ids:
            pending = self._pending.pop(command_id)
            if not pending.future.done():
                pending.future.set_exception(
                    Unavailable(f"command {command_id!r} on node {node_id!r} not done: {reason}")
                )
                pending.future.exception()  # retrieved: a waiter may have timed out already
        return len(ids)

    def forget(self, command_id: str) -> None:
        """Stop waiting for a command and never resend it (its node is gone for good)."""
        pending = self._pending.pop(command_id, None)
        if pending is not None and not pending.future.done():
            pending.future.cancel()

    # ---- background -----------------------------------------------------------------------

    async def watch_heartbeats(self) -> None:
        """Mark silent nodes lost; runs until cancelled."""
        interval = min(self.config.report_period_ms, self.config.heartbeat_timeout_ms / 4) / 1000
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(interval)
                self.state.check_timeouts()
