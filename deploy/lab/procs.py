"""Process identity and termination.

The lab must end only processes it started. A pid alone is not an identity (pids are reused),
so every pid file also records the process start time in clock ticks, and a process is ours
only while both match and its command line names what we expect.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRecord:
    """A process we started: its pid and its start time (clock ticks since boot)."""

    pid: int
    start_ticks: int


def start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks, or None when no such process exists."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _state(pid: int) -> str | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def cmdline(pid: int) -> list[str]:
    """The argv of `pid`, empty when the process is gone or unreadable."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def record_of(pid: int) -> ProcessRecord | None:
    """The identity of a running process, to be written to a pid file."""
    ticks = start_ticks(pid)
    return None if ticks is None else ProcessRecord(pid, ticks)


def _reap(pid: int) -> None:
    """Collect `pid` if it is our own child, so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(record: ProcessRecord) -> bool:
    """True while the very process of `record` runs (not a zombie, not a reused pid)."""
    _reap(record.pid)
    if start_ticks(record.pid) != record.start_ticks:
        return False
    return _state(record.pid) not in (None, "Z", "X")


def write_pid_file(path: Path, record: ProcessRecord) -> None:
    path.write_text(f"{record.pid} {record.start_ticks}\n")


def read_pid_file(path: Path) -> ProcessRecord | None:
    """The record in `path`, or None when the file is missing or not ours (malformed)."""
    try:
        pid_text, ticks_text = path.read_text().split()
        return ProcessRecord(int(pid_text), int(ticks_text))
    except (OSError, ValueError):
        return None


def wait_gone(record: ProcessRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(record):
            return True
        time.sleep(0.05)
    return not is_alive(record)


def terminate(record: ProcessRecord, timeout_s: float = 10.0) -> None:
    """SIGTERM the process of `record`, then SIGKILL it if it outlives `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not is_alive(record):
            return
        try:
            os.kill(record.pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(record, timeout_s):
            return
    if is_alive(record):
        raise OSError(f"process {record.pid} survived SIGKILL")


def processes_of_user_mentioning(uid: int, needle: str, program: str) -> list[ProcessRecord]:
    """Processes of `uid` whose argv[0] ends with `program`-something and whose argv mentions
    `needle` (a lab host directory): how the lab finds the QEMU guests of its own daemons."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        argv = cmdline(int(entry.name))
        if not argv or not os.path.basename(argv[0]).startswith(program):
            continue
        if any(needle in arg for arg in argv):
            record = record_of(int(entry.name))
            if record is not None:
                found.append(record)
    return found
