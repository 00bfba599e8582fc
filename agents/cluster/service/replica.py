"""Replicated cluster managers: one leader elected through etcd, the others standbys.

Every replica of a cluster serves gRPC, and campaigns in the election under
``PREFIX/clusters/CLUSTER_ID/leader/`` with its own address as the value. The one that leads
stamps its term (the create revision of its election key) on every command and hello ack, and
runs the control loop, the executor, HA and the uplink. A standby starts no action: it answers
every ClusterService and NodeLinkService call with UNAVAILABLE naming the leader, in the
message and in the ``vmgrid-leader`` trailing metadata, which agents follow.

The leader's own view of its lease (``Election.holds``) gates every command it sends; when the
lease may have lapsed the gate closes at once and ``deposed`` is set. The replica is then in
"no new decisions" mode (``runtime.ClusterRuntime``): it starts no action, says so in its
refusals, its log and ``vmgrid_cluster_no_new_decisions``, and waits for etcd to answer again
(``wait_for_etcd``), after which the process stops and its supervisor starts it again as a
candidate. No state of a deposed leader survives to act.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio
from vmgrid.agents.cluster.service.replica_options import ReplicaOptions as ReplicaOptions
from vmgrid.agents.common.authz import guard
from vmgrid.agents.common.etcd import Compare, Delete, Election, EtcdClient, EtcdUnavailable, Put
from vmgrid.agents.common.link_stream import LEADER_METADATA

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_RETRY_S = 0.5
"""Pause between two attempts of a new leader to read its state from etcd."""

OBSERVE_PERIOD_S = 0.25
"""How often a standby reads who leads: its redirects name a new leader this soon after the
election (a range request on one key, cheap for etcd)."""
_ALWAYS_SERVED = ("/grpc.health.v1.Health/", "/grpc.reflection.")
STANDBY_READ_METADATA = "vmgrid-standby-read"
"""Request metadata (value ``1``): a standby answers one of `STANDBY_READS` itself, from its
warm view and the state it follows in etcd, instead of naming the leader."""
STANDBY_READS = frozenset({"ListNodes", "GetNode", "ListVms", "ListPlans", "ListRules"})


class Replica:
    """One replica's part in the election: ``await lead(address)`` returns the term once it
    leads; ``leading()`` is the command gate; ``leader_address`` names whoever leads."""

    def __init__(
        self,
        options: ReplicaOptions,
        cluster_id: str,
        *,
        scope: str = "clusters",
        role: str = "cluster manager",
        subject: str = "cluster",
    ) -> None:
        """`scope`, `role` and `subject` name what is replicated: the keys live under
        ``PREFIX/SCOPE/ID/`` (``grids`` for the coordinator), `role` is said in refusals and
        `subject` in the log (``replica r2 leads cluster c1``)."""
        self.options = options
        self.cluster_id = cluster_id
        self.role = role
        self.subject = subject
        self.client = EtcdClient(options.endpoints, options.request_timeout_s, options.tls)
        self.root = f"{options.prefix.rstrip('/')}/{scope}/{cluster_id}"
        self.election = Election(self.client, f"{self.root}/leader/", options.lease_ttl_s)
        self.replica_id = options.replica_id
        self.address = ""
        self.leader_address = ""
        self.leader_id = ""
        self.etcd_answered_at = time.monotonic()
        """When etcd last answered this replica's observer (monotonic seconds)."""
        self.deposed_at = 0.0
        """When this replica noticed its lease was lost (monotonic seconds; 0: it was not)."""
        self._observer: asyncio.Task[None] | None = None

    @property
    def term(self) -> int:
        return self.election.term

    @property
    def deposed(self) -> asyncio.Event:
        """Set when this replica's lease is lost (or it resigned)."""
        return self.election.lost

    def leading(self) -> bool:
        return self.election.holds()

    async def lead(self, address: str) -> int:
        """Campaign until this replica leads; returns its term. etcd being unreachable is
        retried (a replica waits for etcd, it never leads without it)."""
        self.address = self.options.advertise or address
        self.replica_id = self.replica_id or self.address
        self._observer = asyncio.create_task(self._observe())
        value = json.dumps({"replica": self.replica_id, "address": self.address})
        while True:
            try:
                term = await self.election.campaign(value)
                break
            except EtcdUnavailable as exc:
                log.warning("replica %s: cannot campaign yet: %s", self.replica_id, exc)
                self.election = Election(self.client, self.election.prefix, self.election.ttl_s)
                await asyncio.sleep(self.options.lease_ttl_s / 3)
        self.leader_address, self.leader_id = self.address, self.replica_id
        log.info(
            "replica %s leads %s %s with term %d",
            self.replica_id,
            self.subject,
            self.cluster_id,
            term,
        )
        return term

    def etcd_silent_s(self) -> float:
        """Seconds since etcd last answered the observer, beyond one lease TTL (0: it
        answers; a leader's lease cannot outlive that silence)."""
        silent = time.monotonic() - self.etcd_answered_at
        return silent if silent > self.options.lease_ttl_s else 0.0

    async def wait_for_etcd(self, period_s: float = 0.5) -> None:
        """Until etcd answers a read (a linearizable one: a member without quorum does not
        answer it)."""
        while True:
            try:
                await self.election.leader()
                return
            except (EtcdUnavailable, ValueError, KeyError):
                await asyncio.sleep(period_s)

    async def _observe(self) -> None:
        """Keep ``leader_address`` current (a standby names it in its redirects)."""
        while True:
            with contextlib.suppress(EtcdUnavailable, ValueError, KeyError):
                leader = await self.election.leader()
                self.etcd_answered_at = time.monotonic()
                if leader is None:
                    self.leader_address = self.leader_id = ""
                else:
                    data = json.loads(leader.value)
                    if data["address"] != self.leader_address:
                        log.info(
                            "%s %s is led by %s", self.subject, self.cluster_id, data["replica"]
                        )
                    self.leader_address, self.leader_id = data["address"], data["replica"]
            await asyncio.sleep(min(OBSERVE_PERIOD_S, self.options.lease_ttl_s / 3))

    def refusal(self) -> str:
        """Why this replica answers nothing: it lost its lease, or etcd does not answer, or
        it is a standby, and who leads."""
        name = self.replica_id or self.address
        if self.deposed_at:
            return (
                f"{self.role} replica {name} lost its etcd lease "
                f"{time.monotonic() - self.deposed_at:.1f} s ago: no new decisions; it "
                "restarts as a candidate once etcd answers"
            )
        silent = self.etcd_silent_s()
        if silent:
            return (
                f"{self.role} replica {name} is a standby and etcd has not answered for "
                f"{silent:.1f} s (no quorum?): no replica may lead until it does"
            )
        if self.leader_address and self.leader_address != self.address:
            return (
                f"{self.role} replica {self.replica_id} is a standby; the leader is "
                f"{self.leader_id} at {self.leader_address}"
            )
        return (
            f"{self.role} replica {self.replica_id or self.address} is not leading and "
            "no leader is known yet; retry in a few seconds"
        )

    async def write_fenced(self, operations: list[Put | Delete]) -> None:
        """One etcd transaction of `operations`, done only while this replica's election key
        still has its term (same create revision), so a deposed leader cannot overwrite its
        successor's records. EtcdUnavailable when it does not lead or etcd does not answer;
        a refused fence is counted (``errors["fenced"]``), marks the replica deposed and
        raises EtcdUnavailable."""
        election = self.election
        if not election.term:
            raise EtcdUnavailable("this replica does not lead: nothing is written to etcd")
        done = await self.client.txn([Compare(election.key, "create", election.term)], operations)
        if not done.succeeded:
            log.error("etcd refused a write of term %d: this replica was deposed", election.term)
            self.client.errors["fenced"] += 1
            election.lost.set()
            raise EtcdUnavailable(f"term {election.term} ended: etcd holds a newer leader")

    async def read_until_answered(self, read: Callable[[], Awaitable[T]], what: str) -> T:
        """`read()` (a new leader reading its state back), tried again every `READ_RETRY_S`
        while etcd does not answer; `what` names it in the warning."""
        while True:
            try:
                return await read()
            except EtcdUnavailable as exc:
                log.warning("cannot read %s from etcd yet: %s", what, exc)
                await asyncio.sleep(READ_RETRY_S)

    async def close(self) -> None:
        if self._observer is not None:
            self._observer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._observer
        await self.election.resign()
        await self.client.close()


class WriteThrough(Protocol):
    """What the leader writes through to etcd (``replica_store.EtcdMirror``)."""

    @property
    def changes(self) -> int:
        """Grows with every change recorded for etcd."""
        ...

    async def flush(self) -> None: ...


class Flushable(Protocol):
    @property
    def dirty(self) -> bool: ...

    async def flush(self) -> None: ...


async def flush_periodically(mirror: Flushable, what: str, period_s: float = 0.5) -> None:
    """Flush what changed without a command to carry it (plan ends, summaries, jobs), every
    `period_s`; a failure is logged (naming `what`) and the next period tries again."""
    while True:
        await asyncio.sleep(period_s)
        if mirror.dirty:
            try:
                await mirror.flush()
            except EtcdUnavailable as exc:
                log.warning("%s: %s", what, exc)


class StandbyInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but health and reflection while the replica does not lead, and on a
    new leader until it has read the replicated state back from etcd (``caught_up``: a call
    served before would act on the standby's copy, and its change would not be written
    through); on the leader, a unary call that changed something answers only once
    ``write_through`` has stored the change in etcd, so an operator's acknowledged change
    survives the leader. `state` names what is read at takeover, for the refusal."""

    def __init__(self, replica: Replica, state: str) -> None:
        self._replica = replica
        self._state = state
        self.write_through: WriteThrough | None = None
        self.caught_up = False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(_ALWAYS_SERVED):
            return handler
        if method.rpartition("/")[2] in STANDBY_READS:
            return guard(handler, self._check_read)
        return self._durable(guard(handler, self._check))

    def _durable(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        behaviour = handler.unary_unary
        if behaviour is None:
            return handler

        async def answered_once_durable(request: Any, context: grpc.aio.ServicerContext) -> Any:
            mirror = self.write_through
            before = mirror.changes if mirror is not None else 0
            result = await behaviour(request, context)
            if mirror is not None and mirror.changes != before:
                try:
                    await mirror.flush()
                except EtcdUnavailable as exc:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        f"done on the leader but not yet stored in etcd ({exc}); it is "
                        "retried: check the result before repeating the request",
                    )
            return result

        return grpc.unary_unary_rpc_method_handler(
            answered_once_durable,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _check_read(self, context: grpc.aio.ServicerContext) -> None:
        """A read a standby answers from its own (warm) view when the caller asks for it."""
        if (STANDBY_READ_METADATA, "1") in (context.invocation_metadata() or ()):
            return
        await self._check(context)

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        replica = self._replica
        if replica.leading():
            if self.caught_up:
                return
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{replica.role} replica {replica.replica_id or replica.address} has just been "
                f"elected and is reading {self._state} from etcd; retry in a moment",
            )
        leader = replica.leader_address if replica.leader_address != replica.address else ""
        if replica.etcd_silent_s():
            leader = ""  # who led is stale: sending agents there would only bounce them
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            replica.refusal(),
            trailing_metadata=((LEADER_METADATA, leader),) if leader else (),
        )
