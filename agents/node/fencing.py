"""Fencing of deposed cluster-manager leaders on the agent's side.

A replicated manager stamps every command (and its hello ack) with its leadership term, the
create revision of its etcd election key: a later leader always has a higher term. The agent
remembers the highest term it has seen and refuses a command from a lower one with a FAILED
result saying so, so a leader that was deposed while it was paused or cut off cannot move,
start or stop anything after its successor has spoken to this node. A single-replica manager
sends term 0, which is admitted as long as no replicated leader has been seen.
"""

from __future__ import annotations

import logging
import time

from vmgrid.agents import model

log = logging.getLogger(__name__)


class TermFence:
    """The highest leadership term this agent has seen."""

    def __init__(self) -> None:
        self.highest = 0
        self.refused = 0

    def observe(self, term: int) -> None:
        """A hello ack or an admitted command from a manager of `term`."""
        if term > self.highest:
            if self.highest:
                log.info("manager leadership term %d replaces %d", term, self.highest)
            self.highest = term

    def refusal(self, command: model.Command, term: int) -> model.CommandResult | None:
        """The FAILED result that refuses `command` sent with `term`; None when admitted
        (and then `term` is remembered when it is the highest)."""
        if term >= self.highest:
            self.observe(term)
            return None
        self.refused += 1
        message = (
            f"refused: command {command.command_id!r} comes with leadership term {term}, "
            f"below term {self.highest} already seen from a newer leader (stale manager)"
        )
        log.warning("%s", message)
        return model.CommandResult(
            command.command_id,
            model.CommandState.FAILED,
            message=message,
            updated_at_unix_ns=time.time_ns(),
        )
