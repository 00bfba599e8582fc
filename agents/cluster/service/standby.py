"""A standby keeps the replicated state loaded: it follows etcd while another replica leads.

The plans, rules and powered-off nodes (``replica_store.EtcdMirror``) and the settings, jobs
and HA records (``state_mirror.StateMirror``) are read into the standby's own journal and
stores whenever they change in etcd, found with one cheap range per prefix every
``FOLLOW_PERIOD_S`` (``EtcdClient.newest``: the key count and the newest mod revision, so a put
or a delete is seen). Reading them is all a standby does with them: nothing is written to etcd
and nothing acts on them. Once it leads, the same check runs one last time (the old leader
can no longer write: its writes are fenced by its election key, gone with its lease), and
etcd is read again only if something changed since the standby's last read.
"""

from __future__ import annotations

import asyncio
import logging
import time

from vmgrid.agents.cluster.service.replica import Replica
from vmgrid.agents.cluster.service.replica_store import EtcdMirror
from vmgrid.agents.cluster.service.state_mirror import StateMirror
from vmgrid.agents.common.etcd import EtcdUnavailable

log = logging.getLogger(__name__)

FOLLOW_PERIOD_S = 0.5
"""How often a standby checks etcd for changes to the replicated state."""

Marks = tuple[tuple[int, int], ...]


class StateFollower:
    """``await run()`` on a standby (until cancelled); ``await catch_up()`` once it leads."""

    def __init__(self, replica: Replica, journal: EtcdMirror | None, tables: StateMirror) -> None:
        """`journal` None: only `tables` are followed (a coordinator's registry, moves, jobs)."""
        self._replica = replica
        self._journal = journal
        self._tables = tables
        journal_prefixes = () if journal is None else (
            journal.plans_prefix, journal.rules_prefix, journal.nodes_prefix)  # fmt: skip
        self._prefixes = (*journal_prefixes, tables.prefix)
        self.loaded: Marks | None = None
        """The marks of what this replica last read (None: nothing yet)."""
        self.loads = 0
        self.loaded_at = 0.0
        """When the state was last found current (monotonic seconds)."""
        self.counts: dict[str, int] = {}
        """Rows read at the last load, by kind (plans, rules, and each table)."""

    async def _marks(self) -> Marks:
        client = self._replica.client
        return tuple(await asyncio.gather(*(client.newest(p) for p in self._prefixes)))

    async def catch_up(self) -> bool:
        """Read the replicated state into this replica's stores if it changed in etcd since
        the last read; True when it was read. EtcdUnavailable when etcd does not answer."""
        marks = await self._marks()
        if marks == self.loaded:
            self.loaded_at = time.monotonic()
            return False
        counts: dict[str, int] = {}
        if self._journal is not None:
            plans, rules = await self._journal.restore()
            counts = {"plans": plans, "rules": rules}
        self.counts = counts | await self._tables.restore()
        self.loaded = marks  # a change made during the read is read again next time
        self.loads += 1
        self.loaded_at = time.monotonic()
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except EtcdUnavailable as exc:
                log.debug("standby cannot follow etcd yet: %s", exc)
            await asyncio.sleep(FOLLOW_PERIOD_S)
