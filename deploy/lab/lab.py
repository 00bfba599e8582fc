"""The lab: K libvirt hosts on this machine, with real live migration between them.

State lives in one directory: a `<name>/` tree per host (its XDG directories, config, log
and pid file), `guests/` for disk images, `taps.txt` for the taps to remove, and `lab.json`
describing the running hosts. `stop` ends only what those files name: the guests (QEMU) of
our daemons, the daemons, then the taps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import libvirt
from vmgrid.lab import access, network, nfs, procs, taps
from vmgrid.lab.errors import LabError
from vmgrid.lab.host import (
    MAX_HOSTS,
    MIGRATION_URI,
    HostLayout,
    LabHost,
    migration_ports,
    prepare,
    quiet_libvirt,
    spawn,
    wait_until_answers,
    warm_up,
)

DEFAULT_DIR = Path("/tmp/vmgrid-lab")
STATE_FILE = "lab.json"
TAPS_FILE = "taps.txt"


class Lab:
    """A lab rooted at `dir`; several Lab objects on one directory see the same lab."""

    def __init__(
        self,
        dir: str | os.PathLike[str] = DEFAULT_DIR,
        user: str = access.DEFAULT_USER,
        answer_timeout_s: float = 60.0,
        use_kvm: bool = True,
    ) -> None:
        self.path = Path(dir).absolute()
        self.user_name = user
        self.answer_timeout_s = answer_timeout_s
        self.use_kvm = use_kvm
        """False forces TCG (domain type 'qemu') even where KVM works."""
        quiet_libvirt()

    # -- paths ------------------------------------------------------------------------------

    @property
    def guest_dir(self) -> Path:
        """Where to put disk images: readable and writable by the lab user."""
        return self.path / "guests"

    def _layout(self, name: str) -> HostLayout:
        return HostLayout(self.path / name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop on one directory (two CI jobs, or a test and a CLI)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- state ------------------------------------------------------------------------------

    def _load(self) -> list[LabHost]:
        try:
            data = json.loads((self.path / STATE_FILE).read_text())
            return [LabHost.from_json(item) for item in data["hosts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _save(self, hosts: list[LabHost]) -> None:
        temp = self.path / f".{STATE_FILE}.tmp"
        temp.write_text(json.dumps(self._describe(hosts), indent=2) + "\n")
        temp.replace(self.path / STATE_FILE)

    def _describe(self, hosts: list[LabHost]) -> dict[str, Any]:
        return {"dir": str(self.path), "hosts": [host.to_json() for host in hosts]}

    def hosts(self) -> list[LabHost]:
        """The running hosts of this lab, in name order."""
        return [host for host in self._load() if procs.is_alive(host.record)]

    @property
    def kvm(self) -> bool:
        """Whether the lab's guests should use KVM (else TCG: domain type 'qemu')."""
        running = self.hosts()
        return bool(running) and running[0].domain_type == "kvm"

    # -- start ------------------------------------------------------------------------------

    def start(self, k: int) -> list[LabHost]:
        """Make sure host1..hostK run and answer; hosts already running are kept."""
        if not 1 <= k <= MAX_HOSTS:
            raise LabError(f"--hosts {k} is out of range; accepted: 1..{MAX_HOSTS}")
        reason = access.hypervisor_unavailable_reason()
        if reason is not None:
            raise LabError(reason)
        with self._locked():
            user = access.ensure_user(self.user_name)
            self.path.chmod(0o755)
            self._check_reachable(user)
            domain_type = self._domain_type(user)
            self._prepare_guest_dir(user)
            running = {host.name: host for host in self.hosts()}
            for index in range(1, k + 1):
                name = f"host{index}"
                if name not in running:
                    running[name] = self._start_host(user, index, domain_type)
                    self._save(sorted(running.values(), key=_host_order))
            ordered = sorted(running.values(), key=_host_order)
            self._save(ordered)
            return ordered[:k]

    def _check_reachable(self, user: access.LabUser) -> None:
        if not user.privileged:
            return
        result = subprocess.run(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
             "test", "-x", str(self.path)],
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise LabError(
                f"lab dir {self.path} is not reachable by user {user.name} (a parent directory "
                "is private); choose a --dir under /tmp"
            )

    def _domain_type(self, user: access.LabUser) -> str:
        if not access.grant_device(user, access.TUN_DEVICE):
            access.warn(f"user {user.name} cannot open {access.TUN_DEVICE}; tap guests will fail")
        if not self.use_kvm:
            return "qemu"
        if not access.kvm_works():
            access.warn(f"{access.KVM_DEVICE} is missing or unusable; guests run under TCG")
            return "qemu"
        if not access.grant_device(user, access.KVM_DEVICE):
            access.warn(f"user {user.name} cannot open {access.KVM_DEVICE}; guests run under TCG")
            return "qemu"
        return "kvm"

    def _prepare_guest_dir(self, user: access.LabUser) -> None:
        self.guest_dir.mkdir(exist_ok=True)
        if user.privileged:
            os.chown(self.guest_dir, user.uid, user.gid)
        self.guest_dir.chmod(0o775)

    def _start_host(self, user: access.LabUser, index: int, domain_type: str) -> LabHost:
        name = f"host{index}"
        layout = self._layout(name)
        self._end_host_processes(layout)  # leftovers of a crashed run, if any
        host_uuid = str(uuid.uuid4())
        ports = migration_ports(self.path, index)
        prepare(layout, user, host_uuid, ports)
        record = spawn(layout, user)
        wait_until_answers(layout, record, self.answer_timeout_s)
        warm_up(layout, domain_type)
        return LabHost(
            name=name,
            uri=layout.uri,
            host_uuid=host_uuid,
            migration_uri=MIGRATION_URI,
            pid=record.pid,
            start_ticks=record.start_ticks,
            dir=str(layout.base),
            domain_type=domain_type,
            migration_port_min=ports[0],
            migration_port_max=ports[1],
        )

    # -- failures ---------------------------------------------------------------------------

    def kill_host(self, name: str) -> dict[str, Any]:
        """Crash host `name` as a power cut would: SIGKILL its libvirtd, then every QEMU guest
        of that daemon (found by the host directory in their command line). Nothing is shut
        down cleanly; the host's directory, with its persistent domain definitions, stays for
        `restart_host`. Returns the pids killed."""
        layout = self._layout(name)
        with self._locked():
            record = procs.read_pid_file(layout.pid_file)
            if record is None or not procs.is_alive(record):
                running = ", ".join(h.name for h in self.hosts()) or "none"
                raise LabError(f"host {name!r} is not running; running hosts: {running}")
            uid = layout.base.stat().st_uid
            guests = procs.processes_of_user_mentioning(uid, f"{layout.base}/", "qemu-system")
            for victim in (record, *guests):
                _sigkill(victim)
            for victim in (record, *guests):
                if not procs.wait_gone(victim, 10.0):
                    raise LabError(f"process {victim.pid} of {name} survived SIGKILL")
        return {"host": name, "daemon_pid": record.pid, "guest_pids": [g.pid for g in guests]}

    def restart_host(self, name: str) -> LabHost:
        """Start a killed host's libvirtd again on its kept directory (same host UUID, same
        persistent domains, now shut off), as a host coming back after a reboot."""
        with self._locked():
            known = {host.name: host for host in self._load()}
            old = known.get(name)
            if old is None:
                raise LabError(f"host {name!r} is not in this lab; known: {sorted(known)}")
            if procs.is_alive(old.record):
                return old
            layout = self._layout(name)
            user = access.ensure_user(self.user_name)
            record = spawn(layout, user)
            wait_until_answers(layout, record, self.answer_timeout_s)
            new = dataclasses.replace(old, pid=record.pid, start_ticks=record.start_ticks)
            known[name] = new
            self._save(sorted(known.values(), key=_host_order))
            return new

    # -- guest network and NFS -------------------------------------------------------------

    def start_network(self) -> network.GuestNetwork:
        """The lab's bridge with DHCP (see `vmgrid.lab.network`); kept when already up."""
        with self._locked():
            return network.start(self.path)

    def guest_network(self) -> network.GuestNetwork | None:
        """The lab's guest network when it was started, else None."""
        return network.load(self.path)

    def start_nfs(self) -> nfs.NfsServer:
        """An NFS server for the lab's guest network only (starts the network if needed)."""
        net = self.start_network()
        with self._locked():
            return nfs.start(self.path, net)

    # -- taps -------------------------------------------------------------------------------

    def create_tap(self, name: str) -> str:
        """Create a tap for a guest of this lab; `stop` removes it."""
        user = access.ensure_user(self.user_name)
        with self._locked():
            with (self.path / TAPS_FILE).open("a") as listing:
                listing.write(name + "\n")
            return taps.create_tap(name, user.name)

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> dict[str, Any]:
        """End the guests and daemons this lab started and remove its taps. Idempotent."""
        if not self.path.is_dir():
            return {
                "dir": str(self.path),
                "daemons": 0,
                "guests": 0,
                "taps": 0,
                "nfs": False,
                "network": False,
            }
        with self._locked():
            daemons = guests = 0
            for layout in self._host_layouts():
                stopped_daemon, killed = self._end_host_processes(layout)
                daemons += stopped_daemon
                guests += killed
            removed = self._remove_taps()
            nfs_stopped = nfs.stop(self.path)
            network_stopped = network.stop(self.path)
            (self.path / STATE_FILE).unlink(missing_ok=True)
        return {
            "dir": str(self.path),
            "daemons": daemons,
            "guests": guests,
            "taps": removed,
            "nfs": nfs_stopped,
            "network": network_stopped,
        }

    def _host_layouts(self) -> list[HostLayout]:
        return [HostLayout(pid_file.parent) for pid_file in self.path.glob("*/libvirtd.pid")]

    def _end_host_processes(self, layout: HostLayout) -> tuple[int, int]:
        """Stop one host: its guests through libvirt, then the daemon, then any QEMU left
        that names the host's directory. Returns (daemons stopped, guests ended)."""
        record = procs.read_pid_file(layout.pid_file)
        daemon_alive = (
            record is not None
            and procs.is_alive(record)
            and any("libvirtd" in arg for arg in procs.cmdline(record.pid)[:4])
        )
        guests = _destroy_guests(layout.uri) if daemon_alive else 0
        if daemon_alive and record is not None:
            procs.terminate(record)
        uid = layout.base.stat().st_uid if layout.base.exists() else None
        if uid is not None:
            for qemu in procs.processes_of_user_mentioning(uid, f"{layout.base}/", "qemu-system"):
                procs.terminate(qemu)
                guests += 1
        layout.pid_file.unlink(missing_ok=True)
        return int(daemon_alive), guests

    def _remove_taps(self) -> int:
        listing = self.path / TAPS_FILE
        try:
            names = sorted(set(listing.read_text().split()))
        except OSError:
            return 0
        removed = 0
        for name in names:
            if taps.tap_exists(name):
                taps.delete_tap(name)
                removed += 1
        listing.unlink(missing_ok=True)
        return removed

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The recorded hosts with whether each daemon runs and how many guests it has."""
        described = []
        for host in self._load():
            entry = host.to_json()
            entry["alive"] = procs.is_alive(host.record)
            entry["running_guests"] = _count_guests(host.uri) if entry["alive"] else None
            described.append(entry)
        net = network.load(self.path)
        return {
            "dir": str(self.path),
            "hosts": described,
            "network": None if net is None else net.to_json(),
        }

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _host_order(host: LabHost) -> int:
    digits = host.name.removeprefix("host")
    return int(digits) if digits.isdigit() else MAX_HOSTS + 1


def _sigkill(record: procs.ProcessRecord) -> None:
    if procs.is_alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)


def _destroy_guests(uri: str) -> int:
    """Destroy every running guest of the daemon at `uri`; 0 when it does not answer."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return 0
    try:
        ended = 0
        for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
                ended += 1
        return ended
    finally:
        conn.close()


def _count_guests(uri: str) -> int | None:
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return None
    try:
        return len(conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
    finally:
        conn.close()
