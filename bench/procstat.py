"""A process's CPU, page faults and memory, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(path: str) -> list[str]:
    """The fields of a /proc stat file after the command name (field 3, state, is [0])."""
    return Path(path).read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, those of its reaped children: decision processes)."""
    fields = stat_fields(f"/proc/{pid}/stat")
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def main_thread_seconds(pid: int) -> float:
    """CPU seconds of the process's main thread (the manager's event loop: decoding, state);
    the rest of its own CPU is gRPC's threads."""
    fields = stat_fields(f"/proc/{pid}/task/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid: int) -> int:
    """Minor page faults of the process so far: with a decision process forked, each first
    write to a page shared with it faults (and copies the page while the child lives)."""
    return int(stat_fields(f"/proc/{pid}/stat")[7])


def status_kib(pid: int, key: str) -> int:
    """A kB figure of /proc/PID/status (VmRSS, VmHWM, ...); ValueError when it has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"/proc/{pid}/status has no {key}")


def rss_mb(pid: int) -> float:
    """The process's resident set, MiB (0 when its status gives none)."""
    try:
        return status_kib(pid, "VmRSS") / 1024
    except ValueError:
        return 0.0
