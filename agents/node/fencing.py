"""Fencing of deposed cluster-manager leaders on the agent's side.

A replicated manager stamps every command (and its hello ack) with its leadership term, the
create revision of its etcd election key: a later leader always has a higher term. The agent
remembers the highest term it has seen and refuses a command from a lower one with a FAILED
result saying so, so a leader that was deposed while it was paused or cut off cannot move,
start or stop anything after its successor has spoken to this node. A single-replica manager
sends term 0, which is admitted as long as no replicated leader has been seen.

With a state directory the highest term is kept in a file there (``manager-term``), written
atomically (temporary file, fsync, rename) before a command of a higher term is acted on, so
an agent restarted while a deposed leader still runs refuses that leader's commands too.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from vmgrid.agents import model
from vmgrid.agents.errors import ConfigError

log = logging.getLogger(__name__)

TERM_FILE = "manager-term"
"""Name of the file, in the agent's state directory, holding the highest term seen."""


class TermFence:
    """The highest leadership term this agent has seen."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        """The file the highest term is kept in; None: in memory only."""
        self.highest = 0 if path is None else read_term(path)
        self.refused = 0

    def observe(self, term: int) -> None:
        """A hello ack or an admitted command from a manager of `term`; a higher term is
        stored (when there is a file) before this returns. OSError when it cannot be."""
        if term > self.highest:
            if self.path is not None:
                write_term(self.path, term)
            if self.highest:
                log.info("manager leadership term %d replaces %d", term, self.highest)
            self.highest = term

    def refusal(self, command: model.Command, term: int) -> model.CommandResult | None:
        """The FAILED result that refuses `command` sent with `term`; None when admitted
        (and then `term` is remembered when it is the highest)."""
        if term >= self.highest:
            try:
                self.observe(term)
            except OSError as exc:
                return self._failed(
                    command,
                    f"refused: command {command.command_id!r} of leadership term {term} not run:"
                    f" the term cannot be stored in {str(self.path)!r} ({exc.strerror})",
                )
            return None
        self.refused += 1
        return self._failed(
            command,
            f"refused: command {command.command_id!r} comes with leadership term {term}, "
            f"below term {self.highest} already seen from a newer leader (stale manager)",
        )

    @staticmethod
    def _failed(command: model.Command, message: str) -> model.CommandResult:
        log.warning("%s", message)
        return model.CommandResult(
            command.command_id,
            model.CommandState.FAILED,
            message=message,
            updated_at_unix_ns=time.time_ns(),
        )


def read_term(path: Path) -> int:
    """The term stored in `path` (0 when there is no file yet); ConfigError naming the file
    when it cannot be read or holds no term (the agent must not forget a newer leader)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ConfigError(f"state_dir: cannot read {str(path)!r} ({exc.strerror})") from None
    try:
        term = int(text.strip())
    except ValueError:
        term = -1
    if term < 0:
        raise ConfigError(
            f"state_dir: {str(path)!r} holds {text.strip()[:40]!r}, not a leadership term; "
            "remove it only if no replicated manager has ever led this node"
        )
    return term


def write_term(path: Path, term: int) -> None:
    """Store `term` in `path` atomically: a crash leaves the old term or the new, never half."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as handle:
        handle.write(f"{term}\n")
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
