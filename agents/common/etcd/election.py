"""Leader election on etcd, the etcd ``concurrency.Election`` recipe.

Each candidate holds a lease and puts one key ``PREFIX/<lease id in hex>`` bound to it; the
candidate whose key has the lowest create revision leads, and that revision is its **term**:
revisions only grow, so a later leader always has a higher term, which is what agents compare
to refuse a deposed leader's commands. A candidate waits for the key created just before its
own to be deleted (its holder resigned or its lease expired), then checks again.

The lease is renewed every third of its TTL. ``holds()`` is this process's own pessimistic
view: it turns false as soon as the lease may have expired in etcd (TTL after the last renewal
was *sent*), without waiting for etcd to say so, so a leader cut off from etcd stops acting
before another candidate can win. ``lost`` is set then, or when etcd says the lease is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from vmgrid.agents.common.etcd.client import (
    Compare,
    EtcdClient,
    EtcdUnavailable,
    Get,
    KeyValue,
    Put,
    WatchCompacted,
)
from vmgrid.agents.errors import InvalidArgument

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leader:
    """Who leads an election: its key's value and its term (the key's create revision)."""

    value: str
    term: int


class Election:
    """One candidate in the election under `prefix`: ``await campaign(value)`` returns the
    term once this candidate leads; ``holds()`` until the lease is lost; ``resign()``."""

    def __init__(self, client: EtcdClient, prefix: str, ttl_s: int) -> None:
        if ttl_s < 1:
            raise InvalidArgument(f"lease TTL {ttl_s} s: must be >= 1")
        self.client = client
        self.prefix = prefix.rstrip("/") + "/"
        self.ttl_s = ttl_s
        self.lease = 0
        self.key = ""
        self.term = 0
        self.lost = asyncio.Event()
        self._valid_until = 0.0
        self._keepalive: asyncio.Task[None] | None = None

    def holds(self) -> bool:
        """True while this candidate leads and its lease is certainly alive."""
        return self.term > 0 and not self.lost.is_set() and time.monotonic() < self._valid_until

    async def campaign(self, value: str) -> int:
        """Block until this candidate leads; returns its term. EtcdUnavailable when the
        lease cannot be granted or the key put, or when the lease is lost while waiting
        (the candidate's lease is revoked or left to expire then)."""
        sent = time.monotonic()
        self.lease = await self.client.grant(self.ttl_s)
        self._valid_until = sent + self.ttl_s
        self._keepalive = asyncio.create_task(self._renew())
        try:
            self.key = f"{self.prefix}{self.lease:x}"
            created = await self.client.txn(
                [Compare(self.key, "create", 0)],
                [Put(self.key, value, self.lease)],
                [Get(self.key)],
            )
            revision = (
                created.revision if created.succeeded else created.reads[0][0].create_revision
            )
            while not await self._first(revision):
                pass
        except BaseException:
            await self.resign()
            raise
        self.term = revision
        return revision

    async def _first(self, revision: int) -> bool:
        """Whether the key of `revision` is the oldest; if not, wait for the one just older
        to go. An unreachable etcd is waited out for as long as the lease lives."""
        if self.lost.is_set():
            raise EtcdUnavailable(f"etcd lease {self.lease:x} lost while campaigning")
        try:
            candidates = await self.client.range(self.prefix, first_created=True)
        except EtcdUnavailable as exc:
            log.warning("campaign for %s waits for etcd: %s", self.key, exc)
            await asyncio.sleep(self.ttl_s / 6)
            return False
        earlier = [kv for kv in candidates if kv.create_revision < revision]
        if earlier:
            await self._wait_deleted(earlier[-1])
        return not earlier

    async def _wait_deleted(self, kv: KeyValue) -> None:
        """Until `kv` is deleted, or a renewal period passes (then the caller looks again, so a
        watch stuck on a silent member cannot hold the campaign)."""
        start = kv.mod_revision + 1
        with contextlib.suppress(TimeoutError, EtcdUnavailable):
            async with asyncio.timeout(self.ttl_s / 3):
                while True:
                    try:
                        async for event in self.client.watch(kv.key, start_revision=start):
                            if event.kind == "delete":
                                return
                    except WatchCompacted as exc:  # a leader key older than etcd's history
                        start = exc.compact_revision

    async def _renew(self) -> None:
        """Renew every third of the TTL. One renewal may take up to what is left of the lease:
        a late answer (a slow network, a loaded host) still renews it from when it was sent;
        given up after a third of the TTL, every renewal slower than that was lost while etcd
        kept the lease alive, and the leader stepped down for nothing."""
        period = self.ttl_s / 3
        while not self.lost.is_set():
            sent = time.monotonic()
            try:
                async with asyncio.timeout(max(0.05, self._valid_until - sent)):
                    ttl = await self.client.keepalive(self.lease)
            except (TimeoutError, EtcdUnavailable) as exc:
                log.warning("etcd lease %x not renewed: %s", self.lease, exc or "timeout")
                ttl = -1
            if ttl == 0:
                log.error("etcd lease %x expired", self.lease)
                self.lost.set()
                return
            if ttl > 0:
                self._valid_until = sent + ttl
            remaining = self._valid_until - time.monotonic()
            if remaining <= 0:
                log.error("etcd lease %x not renewed for its whole TTL: lost", self.lease)
                self.lost.set()
                return
            await asyncio.sleep(max(0.0, min(period - (time.monotonic() - sent), remaining)))

    async def leader(self) -> Leader | None:
        """Who leads now (None when nobody campaigns)."""
        first = await self.client.range(self.prefix, limit=1, first_created=True)
        return Leader(first[0].value, first[0].create_revision) if first else None

    async def resign(self) -> None:
        """Stop renewing and revoke the lease (its key goes with it)."""
        self.term = 0
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        lease, self.lease = self.lease, 0
        if lease:
            with contextlib.suppress(EtcdUnavailable):
                await self.client.revoke(lease)
        self.lost.set()
