"""Fencing of deposed coordinator leaders on the cluster's side of the grid link.

A replicated coordinator stamps its hello ack and every grid command with its leadership term
(the create revision of its etcd election key: a later leader always has a higher one). The
cluster's uplink remembers the highest term it has seen: a hello ack below it ends the stream
(the uplink tries the next coordinator replica) and a command below it is answered FAILED,
saying why, and never reaches the handler, so a coordinator deposed while a move was under way
cannot reserve, move or commit anything after its successor has spoken to this cluster. A
single coordinator sends term 0, admitted as long as no replicated leader has been seen.

The highest term is kept in memory: a manager that restarts, or a standby that takes over,
learns it again from the first hello ack of the coordinator that leads.
"""

from __future__ import annotations

import logging

from vmgrid.agents import grid_model as m

log = logging.getLogger(__name__)


class CoordinatorFence:
    """The highest coordinator term this cluster has seen, and how many commands it refused."""

    def __init__(self) -> None:
        self.highest = 0
        self.refused = 0

    def admits(self, term: int) -> bool:
        """Whether a coordinator of `term` may speak; a higher term is remembered."""
        if term < self.highest:
            return False
        if term > self.highest:
            if self.highest:
                log.info("coordinator leadership term %d replaces %d", term, self.highest)
            self.highest = term
        return True

    def refusal(self, command: m.GridCommand, term: int) -> m.GridCommandResult | None:
        """The FAILED result that refuses `command` sent with `term`; None when admitted."""
        if self.admits(term):
            return None
        self.refused += 1
        message = (
            f"refused: grid command {command.command_id!r} comes with coordinator term {term}, "
            f"below term {self.highest} already seen from a newer leader (stale coordinator)"
        )
        log.warning("%s", message)
        return m.GridCommandResult(command.command_id, m.GridCommandState.FAILED, message=message)
