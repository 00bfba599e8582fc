"""A grid move whose VM left its source and cannot start at its destination: sent back.

A simulated move's VM runs nowhere between its source's stop and its destination's start. When
the destination's commit has kept failing for `MoverOptions.return_after_s` (no node there
takes the VM), the coordinator asks the destination to release its reservation (the cluster
removes any copy defined there first, and refuses while the VM runs there: the commit is then
tried again), and finds the VM a home in rounds: a reservation and a commit in its source
cluster, then in its destination, alternately, until one cluster starts it. The move ends
``returned`` (in its source: the move failed, the VM is back) or ``done``.

Each round's commands have ids of their own derived from the move's (``<move>/home<k>/...``)
and the round and its commit attempt are journaled with the move, so a restarted coordinator
resends the same commands and the clusters answer from their journals: a VM is started by at
most one commit, and the commit checks that it does not already run in that cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from vmgrid.agents import grid_model as m
from vmgrid.coordinator.moves import Move, Phase

log = logging.getLogger(__name__)
RETRY_S = 2.0

Send = Callable[[str, m.GridCommand], Awaitable[m.GridCommandResult]]
Record = Callable[[Move, str, bool], Move]
"""Saves a move in the journal, publishes the message as its event when told to, returns
the move."""


class Homing:
    def __init__(self, send: Send, record: Record, ttl_ms: int) -> None:
        self._send = send
        self._record = record
        self._ttl_ms = ttl_ms

    async def give_up_destination(self, move: Move) -> Move:
        """``returning`` once the destination has released its reservation; the move as it
        was (``migrated``, its commit to be tried again) when the destination refused."""
        release = m.ReleaseReservation(
            move.command_id(f"home-release{move.home_attempt}"), move.reservation_id
        )
        result = await self._send(move.dst, release)
        if result.state is not m.GridCommandState.SUCCEEDED:
            log.warning(
                "move %s: %s kept its reservation: %s", move.move_id, move.dst, result.message
            )
            return self._record(replace(move, home_attempt=move.home_attempt + 1), "", False)
        why = f"{move.dst} could not start it ({move.message}); sending it back to {move.src}"
        return self.send_back(move, why)

    def send_back(self, move: Move, why: str) -> Move:
        """The move, ``returning`` from its first round on, journaled and published."""
        returning = replace(move, phase=Phase.RETURNING, home_round=0, home_attempt=0, message=why)
        return self._record(returning, why, True)

    async def round(self, move: Move, known: list[str]) -> Move:
        """One step of finding the VM a home among the `known` clusters (the move's source
        and destination, less a cluster an operator forgot): the move as it ends (final when
        a cluster started the VM, with a later round or attempt otherwise, after a pause)."""
        cluster = move.src if move.home_round % 2 == 0 else move.dst
        if cluster not in known:
            return await self._next_round(move, f"cluster {cluster!r} was forgotten")
        rid = f"{move.move_id}/home{move.home_round}"
        reserve = m.ReserveCapacity(f"{rid}/reserve", rid, move.vm, self._ttl_ms)
        reserved = await self._send(cluster, reserve)
        if reserved.state is not m.GridCommandState.SUCCEEDED:
            return await self._next_round(move, f"{cluster} has no room: {reserved.message}")
        commit = m.CommitReservation(f"{rid}/commit{move.home_attempt}", rid)
        started = await self._send(cluster, commit)
        if started.state is m.GridCommandState.SUCCEEDED:
            back = cluster == move.src
            phase, verb = (Phase.RETURNED, "returned to") if back else (Phase.DONE, "done in")
            why = f"{verb} {cluster}: {started.message}"
            ended = replace(move, phase=phase, failed=back, node_id=started.node_id, message=why)
            return self._record(ended, why, True)
        release = m.ReleaseReservation(f"{rid}/release{move.home_attempt}", rid)
        released = await self._send(cluster, release)
        if released.state is m.GridCommandState.SUCCEEDED:
            return await self._next_round(move, f"{cluster} did not start it: {started.message}")
        # the cluster keeps its reservation (the VM may run there): commit there again
        log.warning(
            "move %s: %s kept reservation %s: %s", move.move_id, cluster, rid, released.message
        )
        await asyncio.sleep(RETRY_S)
        again = replace(move, home_attempt=move.home_attempt + 1, message=started.message)
        return self._record(again, started.message, move.home_attempt == 0)

    async def _next_round(self, move: Move, why: str) -> Move:
        await asyncio.sleep(RETRY_S)
        text = f"no home yet, trying again: {why}"
        later = replace(move, home_round=move.home_round + 1, home_attempt=0, message=text)
        # an event for each cluster's first refusal; later rounds are journaled quietly
        return self._record(later, text, move.home_round < 2)
