"""The cluster side of the grid link: a reusable client that keeps a cluster registered.

``GridUplink`` dials the coordinator, says hello, then sends the summary returned by
``summary_source()`` every period, and reconnects with exponential backoff (with jitter) when
the link drops. The cluster manager only has to supply a callable that builds its current
``ClusterSummary``; the uplink stamps each one with a growing sequence and the send time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

import grpc
import grpc.aio
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.grid.fence import CoordinatorFence
from vmgrid.agents.common.link_stream import LEADER_METADATA
from vmgrid.agents.common.redial import next_dial_delay_s
from vmgrid.agents.common.supervise import Supervised, supervise
from vmgrid.agents.identity import Role
from vmgrid.agents.tls import server_role_options
from vmgrid.v1 import grid_pb2_grpc

log = logging.getLogger(__name__)

SummarySource = Callable[[], m.ClusterSummary]
ResultSink = Callable[[m.GridCommandResult], None]
DEFAULT_CLUSTER_TIMEOUT_S = 30.0
"""The coordinator's timeout for a silent cluster until a hello ack has said it."""
CommandHandler = Callable[[m.GridCommand, ResultSink], None]
"""Takes a grid command and a sink for its results; must return at once (start a task)."""


class GridUplink:
    """Keeps one GridLinkService.Connect stream open; ``start()`` it, ``await stop()`` it."""

    def __init__(
        self,
        coordinator_addr: str,
        credentials: grpc.ChannelCredentials | None,
        hello: m.ClusterHello,
        summary_source: SummarySource,
        period_s: float = 5.0,
        *,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        follow_coordinator_period: bool = True,
    ) -> None:
        """``credentials`` None means plaintext (tests); ``follow_coordinator_period`` uses
        the period the coordinator asks for in its hello acknowledgement instead of
        ``period_s``. ``coordinator_addr`` may list every replica of a replicated
        coordinator, separated by commas: the uplink follows a standby's redirect at once
        and tries the next address after any other failure (every address of the list in turn,
        then ``redial.replica_delay_s``: at most 0.5 s for the coordinator's cluster timeout,
        then longer)."""
        self._targets = [t.strip() for t in coordinator_addr.split(",") if t.strip()]
        self.coordinator_addr = self._targets[0] if self._targets else coordinator_addr
        """The address dialled now (the leader's, once found)."""
        self._redirected = False
        self._silent_since = time.monotonic()
        """When the link last lost (or first looked for) an acknowledged stream."""
        self._timeout_s = DEFAULT_CLUSTER_TIMEOUT_S
        self.hello = hello
        self.period_s = period_s
        self.ack: m.HelloAck | None = None
        self.errors: list[m.StreamError] = []
        self.sent = 0
        self.connects = 0
        self.dials = 0
        """Streams opened (acknowledged or not)."""
        self.connected = asyncio.Event()
        self._credentials = credentials
        self._source = summary_source
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._follow = follow_coordinator_period
        self._sequence = 0
        self._task: asyncio.Task[None] | None = None
        self._out: asyncio.Queue[object] | None = None
        self.command_handler: CommandHandler | None = None
        self.fence = CoordinatorFence()
        """The highest coordinator term seen: lower hello acks and commands are refused."""
        self.sender = Supervised(f"uplink-{hello.cluster_id}-summaries")
        """Restarts of the summary sender (a failing summary never ends the link)."""
        """Set by the cluster manager to act on grid commands; None: commands are logged."""

    def start(self) -> asyncio.Task[None]:
        """Run the link as a task of the current event loop."""
        if self._task is None or self._task.done():
            self._task = supervise(self.run, f"uplink-{self.hello.cluster_id}")
        return self._task

    async def stop(self) -> None:
        """Close the stream and end the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected.clear()

    async def run(self) -> None:
        """Connect, stream, and reconnect with backoff until cancelled."""
        backoff = self._initial_backoff_s
        while True:
            try:
                await self._session()
            except grpc.aio.AioRpcError as exc:
                if not self._follow_leader(exc):
                    log.warning(
                        "grid uplink %s -> %s: %s: %s",
                        self.hello.cluster_id,
                        self.coordinator_addr,
                        exc.code().name,
                        exc.details(),
                    )
            self.connected.clear()
            if self.ack is not None:
                backoff = self._initial_backoff_s
                if self.ack.heartbeat_timeout_ms > 0:
                    self._timeout_s = self.ack.heartbeat_timeout_ms / 1000
                self.ack = None
                self._silent_since = time.monotonic()
            if self._redirected:
                self._redirected = False
                continue  # a standby named the leader: dial it now
            delay = backoff * random.uniform(0.8, 1.2)
            if len(self._targets) > 1:
                self.coordinator_addr = self._next_target()
                silent_s = time.monotonic() - self._silent_since
                round_ended = self.coordinator_addr == self._targets[0]
                delay = next_dial_delay_s(round_ended, silent_s, self._timeout_s)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, self._max_backoff_s)

    def _next_target(self) -> str:
        """The address after the current one in the list (the first after a redirect to an
        address outside the list)."""
        if self.coordinator_addr not in self._targets:
            return self._targets[0]
        return self._targets[(self._targets.index(self.coordinator_addr) + 1) % len(self._targets)]

    def _follow_leader(self, exc: grpc.aio.AioRpcError) -> bool:
        """Whether `exc` is a standby's redirect; if so the next dial goes to the leader."""
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:
            return False
        metadata = exc.trailing_metadata() or ()
        leader = next((str(v) for k, v in metadata if k == LEADER_METADATA), "")
        if not leader or leader == self.coordinator_addr:
            return False
        log.info(
            "grid uplink %s: coordinator at %s is a standby; the leader is at %s",
            self.hello.cluster_id,
            self.coordinator_addr,
            leader,
        )
        self.coordinator_addr = leader
        self._redirected = True
        return True

    def _channel(self) -> grpc.aio.Channel:
        if self._credentials is None:
            return grpc.aio.insecure_channel(self.coordinator_addr)
        return grpc.aio.secure_channel(
            self.coordinator_addr, self._credentials, server_role_options(Role.COORDINATOR)
        )

    async def _session(self) -> None:
        self.dials += 1
        async with self._channel() as channel:
            out: asyncio.Queue[object] = asyncio.Queue()
            out.put_nowait(grid_codec.hello_request(self.hello))

            async def requests() -> AsyncIterator[object]:
                while True:
                    yield await out.get()

            call = grid_pb2_grpc.GridLinkServiceStub(channel).Connect(requests())
            sender: asyncio.Task[None] | None = None
            try:
                while (msg := await call.read()) is not grpc.aio.EOF:
                    item = grid_codec.decode_response(msg)
                    if isinstance(item, m.HelloAck) and not self.fence.admits(item.term):
                        log.warning(
                            "grid uplink %s: coordinator at %s leads with term %d, below "
                            "term %d seen: a deposed leader; trying another replica",
                            self.hello.cluster_id,
                            self.coordinator_addr,
                            item.term,
                            self.fence.highest,
                        )
                        return
                    if isinstance(item, m.HelloAck):
                        self._out = out
                        self._on_ack(item)
                        if sender is None:
                            sender = supervise(
                                lambda: self._send_summaries(out),
                                f"uplink-{self.hello.cluster_id}-summaries",
                                record=self.sender,
                            )
                    elif isinstance(item, m.StreamError):
                        log.warning("coordinator rejected a message: %s", item.message)
                        self.errors.append(item)
                    elif item is not None:
                        self._out = out
                        refusal = self.fence.refusal(item, grid_codec.command_term(msg))
                        if refusal is not None:
                            self.send_result(refusal)
                        else:
                            self._on_command(item)
                log.info("grid uplink %s: coordinator closed the stream", self.hello.cluster_id)
            finally:
                if self._out is out:
                    self._out = None
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender
                call.cancel()

    def _on_command(self, command: m.GridCommand) -> None:
        if self.command_handler is None:
            log.info("grid uplink %s: no handler for %s", self.hello.cluster_id, command)
            return
        self.command_handler(command, self.send_result)

    def send_result(self, result: m.GridCommandResult) -> None:
        """Queue a command result on the open stream; dropped when the link is down (the
        coordinator resends unfinished commands after a reconnect, and asks again)."""
        if self._out is not None:
            self._out.put_nowait(grid_codec.result_request(result))

    def _on_ack(self, ack: m.HelloAck) -> None:
        self.ack = ack
        self.connects += 1
        if self._follow and ack.summary_period_ms > 0:
            self.period_s = ack.summary_period_ms / 1000
        if not ack.known_cluster:
            log.warning(
                "coordinator of grid %s does not know cluster %r in its topology",
                ack.grid_id,
                self.hello.cluster_id,
            )
        self.connected.set()

    async def _send_summaries(self, out: asyncio.Queue[object]) -> None:
        while True:
            try:
                summary = self._source()
            except Exception:  # the link outlives a failing summary source
                log.exception("grid uplink %s: summary source failed", self.hello.cluster_id)
            else:
                self._sequence += 1
                stamped = dataclasses.replace(
                    summary, sequence=self._sequence, sent_at_unix_ns=time.time_ns()
                )
                out.put_nowait(grid_codec.summary_request(stamped))
                self.sent += 1
            await asyncio.sleep(self.period_s)
