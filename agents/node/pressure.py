"""Pressure-stall information (PSI): the host's /proc/pressure/* and each QEMU VM's cgroup.

PSI says how much of the last seconds tasks spent waiting for a resource, which utilisation
cannot: a node at 70 % CPU whose vCPU threads queue behind each other is worse off than one
at 90 % that runs them at once. The kernel writes one file per resource::

    some avg10=16.77 avg60=5.03 avg300=2.58 total=4896213603
    full avg10=0.00 avg60=0.00 avg300=0.00 total=0

A VM's own figures are its cgroup's ``cpu.pressure``, ``memory.pressure`` and ``io.pressure``
(cgroup v2): the agent finds the QEMU process by the ``-uuid`` on its command line and its
cgroup in ``/proc/PID/cgroup``. A VM in the root cgroup (an unprivileged lab daemon, say) has
no cgroup of its own, so its pressure is unavailable, never the host's passed off as its own.
Anything that cannot be read is None (unavailable), not zero.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from vmgrid.agents import model
from vmgrid.agents.errors import InvalidArgument

_RESOURCES = ("cpu", "memory", "io")
_RESCAN_S = 30.0
"""Least time between two /proc scans for QEMU processes that were not found again."""
_MAX_SOUGHT = 1024


class PsiFormatError(InvalidArgument):
    """A PSI file whose text is not the kernel's format."""


def parse_psi(text: str) -> model.PressureStall:
    """The figures of one PSI file; PsiFormatError names the line that does not parse.

    ``full`` is missing from the host's cpu file on kernels before 5.13: it reads as 0.
    """
    lines: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, _, rest = line.partition(" ")
        try:
            fields = dict(item.split("=", 1) for item in rest.split())
        except ValueError:
            raise PsiFormatError(f"PSI line {line!r} is not 'some|full key=value ...'") from None
        lines[kind] = fields
    some = lines.get("some")
    if some is None:
        raise PsiFormatError(f"PSI text {text[:80]!r} has no 'some' line")
    full = lines.get("full", {})
    try:
        return model.PressureStall(
            some_avg10=float(some["avg10"]),
            full_avg10=float(full.get("avg10", 0.0)),
            some_total_us=int(some["total"]),
            full_total_us=int(full.get("total", 0)),
        )
    except (KeyError, ValueError) as exc:
        raise PsiFormatError(f"PSI text {text[:80]!r}: bad or missing {exc}") from None


def _stall(path: Path) -> model.PressureStall | None:
    try:
        return parse_psi(path.read_text())
    except (OSError, PsiFormatError):
        return None


def read_host_pressure(root: Path = Path("/proc/pressure")) -> model.Pressure:
    """The host's pressure; each resource whose file cannot be read is unavailable."""
    return model.Pressure(*(_stall(root / name) for name in _RESOURCES))


def read_cgroup_pressure(directory: Path) -> model.Pressure:
    """A cgroup v2 directory's pressure (``cpu.pressure``...)."""
    return model.Pressure(*(_stall(directory / f"{name}.pressure") for name in _RESOURCES))


def cgroup2_mount(mounts: Path = Path("/proc/mounts")) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on hybrid
    hosts); None without one."""
    try:
        for line in mounts.read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return Path(parts[1])
    except OSError:
        return None
    return None


def process_cgroup(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The cgroup v2 path of a process ("0::/machine.slice/..."); None when it has none."""
    try:
        for line in (proc / str(pid) / "cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        return None
    return None


def _uuid_of(cmdline: bytes) -> str | None:
    args = cmdline.split(b"\0")
    for i, arg in enumerate(args[:-1]):
        if arg == b"-uuid":
            return args[i + 1].decode(errors="replace").lower()
    return None


class VmPressureReader:
    """Finds each VM's QEMU process and reads its cgroup's pressure.

    Processes are found by one scan of /proc and remembered by uuid; a VM that was not found
    is looked for again at most every 30 s, so a host whose VMs have no readable process (not
    QEMU, another user's) costs one scan per half minute, not one per report.
    """

    def __init__(self, proc: Path = Path("/proc"), cgroup_root: Path | None = None) -> None:
        self._proc = proc
        self._root = cgroup_root if cgroup_root is not None else cgroup2_mount(proc / "mounts")
        self._pids: dict[str, int] = {}
        self._sought: set[str] = set()  # uuids looked for without a known process
        self._last_scan = -_RESCAN_S

    def pids(self, uuids: Iterable[str]) -> dict[str, int]:
        """The QEMU process of each VM (by uuid, as given) that has one (the guest-memory
        meter's way to its process; same scans as `read`)."""
        wanted = {u.lower(): u for u in uuids}
        self._find(wanted)
        return {uuid: self._pids[key] for key, uuid in wanted.items() if key in self._pids}

    def _find(self, wanted: Iterable[str]) -> None:
        """Scan /proc when a VM has no known process: at once for a VM not looked for since
        its process was last found (one just started, arrived by migration, or back from
        another host: its old process is gone), else at most every 30 s."""
        missing = [u for u in wanted if not self._alive(u)]
        if not missing:
            return
        new = not self._sought.issuperset(missing)
        if len(self._sought) > 4 * _MAX_SOUGHT:
            self._sought.clear()
        self._sought.update(missing)
        if new or time.monotonic() - self._last_scan >= _RESCAN_S:
            self._scan()
            self._sought.difference_update(self._pids)  # found: sought no more

    def read(self, uuids: Iterable[str]) -> tuple[model.VmPressure, ...]:
        """Pressure rows for the VMs (by uuid) whose own cgroup can be read."""
        if self._root is None:
            return ()
        wanted = {u.lower(): u for u in uuids}
        self._find(wanted)
        out = []
        for key, uuid in wanted.items():
            pid = self._pids.get(key)
            path = None if pid is None else process_cgroup(pid, self._proc)
            if path is None or path == "/":
                continue
            pressure = read_cgroup_pressure(self._root / path.lstrip("/"))
            if pressure.available:
                out.append(model.VmPressure(uuid, pressure))
        return tuple(out)

    def _alive(self, uuid: str) -> bool:
        pid = self._pids.get(uuid)
        if pid is None:
            return False
        try:
            if _uuid_of((self._proc / str(pid) / "cmdline").read_bytes()) == uuid:
                return True
        except OSError:
            pass
        del self._pids[uuid]
        return False

    def _scan(self) -> None:
        self._last_scan = time.monotonic()
        found: dict[str, int] = {}
        try:
            entries = os.listdir(self._proc)
        except OSError:
            return
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                uuid = _uuid_of((self._proc / entry / "cmdline").read_bytes())
            except OSError:
                continue
            if uuid is not None:
                found[uuid] = int(entry)
        self._pids = found
