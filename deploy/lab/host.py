"""One lab host: a session-mode libvirtd of the lab user with its own directories.

Each host gets its own HOME and XDG directories under `<lab dir>/<name>`, its own
`host_uuid` (libvirt refuses to migrate between hosts with the same UUID), its own range of
migration ports (so concurrent migrations between daemons never race for a port) and QEMU
logs written to files (so no virtlogd is spawned that `stop` would have to find).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
from vmgrid.lab import network, procs
from vmgrid.lab.access import LabUser
from vmgrid.lab.errors import LabError

MIGRATION_URI = "tcp://127.0.0.1"
MAX_HOSTS = 16
_PORT_BASE = 49152
_PORTS_PER_HOST = 16
_PORTS_PER_LAB = MAX_HOSTS * _PORTS_PER_HOST
_LAB_SLOTS = (65536 - _PORT_BASE) // _PORTS_PER_LAB
_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class LabHost:
    """A running lab host, as other code (tests, benchmarks, agents) addresses it."""

    name: str
    uri: str
    host_uuid: str
    migration_uri: str
    pid: int
    start_ticks: int
    dir: str
    domain_type: str
    """'kvm' when guests get hardware virtualisation, 'qemu' (TCG) otherwise."""
    migration_port_min: int
    migration_port_max: int

    def connect(self) -> libvirt.virConnect:
        """A new libvirt connection to this host (the caller closes it)."""
        return libvirt.open(self.uri)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uri": self.uri,
            "host_uuid": self.host_uuid,
            "migration_uri": self.migration_uri,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "dir": self.dir,
            "domain_type": self.domain_type,
            "migration_port_min": self.migration_port_min,
            "migration_port_max": self.migration_port_max,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabHost:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    @property
    def record(self) -> procs.ProcessRecord:
        return procs.ProcessRecord(self.pid, self.start_ticks)


@dataclass(frozen=True)
class HostLayout:
    """Where a host keeps its state; everything lives under `base`."""

    base: Path

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def runtime(self) -> Path:
        return self.base / "run"

    @property
    def config(self) -> Path:
        return self.base / "config"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    @property
    def socket(self) -> Path:
        return self.runtime / "libvirt" / "libvirt-sock"

    @property
    def log(self) -> Path:
        return self.base / "libvirtd.log"

    @property
    def pid_file(self) -> Path:
        return self.base / "libvirtd.pid"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    def environment(self) -> dict[str, str]:
        return {
            "PATH": _SEARCH_PATH,
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_CONFIG_HOME": str(self.config),
            "XDG_CACHE_HOME": str(self.cache),
            "LANG": "C.UTF-8",
        }


def migration_ports(lab_dir: Path, index: int) -> tuple[int, int]:
    """The migration port range of host number `index` (1-based) of the lab in `lab_dir`.

    Hosts of one lab get disjoint ranges; labs in different directories get different
    slots (from a hash of the directory), so that two labs on one machine rarely overlap.
    """
    if not 1 <= index <= MAX_HOSTS:
        raise LabError(f"host index {index} is out of range; accepted: 1..{MAX_HOSTS}")
    slot = int(hashlib.sha256(str(lab_dir).encode()).hexdigest(), 16) % _LAB_SLOTS
    low = _PORT_BASE + slot * _PORTS_PER_LAB + (index - 1) * _PORTS_PER_HOST
    return low, low + _PORTS_PER_HOST - 1


def libvirtd_conf(host_uuid: str) -> str:
    return f'host_uuid = "{host_uuid}"\n'


def qemu_conf(port_min: int, port_max: int, bridge_helper: Path | None = None) -> str:
    """`bridge_helper`: the lab's qemu-bridge-helper, through which guests join its bridge."""
    helper = "" if bridge_helper is None else f'bridge_helper = "{bridge_helper}"\n'
    return (
        'stdio_handler = "file"\n'
        f"migration_port_min = {port_min}\n"
        f"migration_port_max = {port_max}\n"
        f"{helper}"
    )


def prepare(layout: HostLayout, user: LabUser, host_uuid: str, ports: tuple[int, int]) -> None:
    """Create a fresh host directory tree owned by the lab user, with its configuration."""
    shutil.rmtree(layout.base, ignore_errors=True)
    for path in (layout.home, layout.runtime, layout.config / "libvirt", layout.cache):
        path.mkdir(parents=True, exist_ok=True)
    (layout.config / "libvirt" / "libvirtd.conf").write_text(libvirtd_conf(host_uuid))
    helper = network.helper_path(layout.base.parent)
    (layout.config / "libvirt" / "qemu.conf").write_text(qemu_conf(*ports, helper))
    layout.runtime.chmod(0o700)
    for root, dirs, files in os.walk(layout.base):
        for name in [root, *(os.path.join(root, d) for d in dirs)]:
            os.chown(name, user.uid, user.gid)
        for name in files:
            os.chown(os.path.join(root, name), user.uid, user.gid)


def daemon_command(user: LabUser) -> list[str]:
    libvirtd = shutil.which("libvirtd", path=_SEARCH_PATH)
    if libvirtd is None:
        raise LabError(
            "libvirtd not found; install the Debian packages libvirt-daemon "
            "libvirt-daemon-driver-qemu (make system-deps)"
        )
    command = [libvirtd, "--timeout", "0"]
    if not user.privileged:
        return command
    # setpriv execs in place, so the pid we record is libvirtd's own.
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", *command]


def spawn(layout: HostLayout, user: LabUser) -> procs.ProcessRecord:
    """Start the host's libvirtd in its own session and record its pid."""
    with layout.log.open("ab") as log:
        child = subprocess.Popen(
            daemon_command(user),
            env=layout.environment(),
            cwd=layout.base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = procs.record_of(child.pid)
    if record is None:
        raise LabError(f"libvirtd exited at once; see {layout.log}")
    procs.write_pid_file(layout.pid_file, record)
    return record


def quiet_libvirt() -> None:
    """libvirt prints every failed call to stderr by default; the lab raises instead."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def wait_until_answers(layout: HostLayout, record: procs.ProcessRecord, timeout_s: float) -> None:
    """Block until the daemon accepts a libvirt connection; fail with its log otherwise."""
    quiet_libvirt()
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not procs.is_alive(record):
            raise LabError(f"libvirtd of {layout.base.name} exited: {log_tail(layout)}")
        if layout.socket.exists():
            try:
                libvirt.open(layout.uri).close()
                return
            except libvirt.libvirtError as error:
                last_error = str(error)
        time.sleep(0.1)
    raise LabError(
        f"libvirtd of {layout.base.name} did not answer within {timeout_s:.0f} s "
        f"({last_error}); see {layout.log}"
    )


def warm_up(layout: HostLayout, domain_type: str) -> None:
    """Have the daemon probe QEMU's capabilities now (about 3 s here), so that the first
    guest started or migrated onto this host does not pay for it."""
    conn = libvirt.open(layout.uri)
    try:
        conn.getDomainCapabilities(None, "x86_64", None, domain_type)
    except libvirt.libvirtError:
        pass  # the first guest start probes instead; nothing is lost but time
    finally:
        conn.close()


def log_tail(layout: HostLayout, lines: int = 5) -> str:
    try:
        text = layout.log.read_text(errors="replace").splitlines()
    except OSError:
        return f"no log at {layout.log}"
    interesting = [line for line in text if "dmi" not in line.lower() and "bus" not in line]
    return " | ".join(interesting[-lines:]) or f"see {layout.log}"
