"""A private etcd cluster (Debian's ``etcd-server``) on free loopback ports, for tests, the lab
and the demo.

``EtcdCluster(directory, members=3).start()`` starts 1 or 3 members, each with its own data
directory and log file under ``directory`` and its own client and peer ports (never 2379/2380,
so a system etcd that the Debian package may have started does not matter), and waits until
every member answers ``/health``. Members are ended by the pid they were started with
(``stop``), one member can be killed, paused (SIGSTOP, to cut a client's session without
closing its sockets) and resumed, and ``endpoints`` lists the client URLs.

With ``tls=True`` the members speak TLS on both ports, with client certificates required
(``--client-cert-auth``, ``--peer-client-cert-auth``), from certificates made the way vmgrid's
own mTLS certificates are (``vmgrid.coordinator.certs``): a project CA under ``DIR/tls-ca``,
one member certificate each and a client certificate (``client_tls``: a cluster manager's
certificate, what a replica presents) under ``DIR/tls``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmgrid.agents.identity import Identity, Role
from vmgrid.agents.tls import TlsFiles
from vmgrid.coordinator.certs import create_ca, create_component_cert, create_etcd_member_cert
from vmgrid.lab import procs
from vmgrid.lab.errors import LabError

ETCD = "etcd"
ENDPOINTS_FILE = "endpoints"
CLIENT_NAME = "replicated"
"""Name of the client certificate a TLS cluster's members accept (a cluster manager's, of
the cluster id the lab's replicas use)."""
"""Written in the cluster's directory once every member is healthy: the client URLs,
comma-separated (what `--etcd-endpoints` takes)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free at the time of the call."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class EtcdMember:
    """One etcd process of the cluster."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    scheme: str = "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EtcdCluster:
    """``start()`` / ``stop()``; ``endpoints`` are the members' client URLs."""

    def __init__(
        self,
        directory: Path,
        members: int = 3,
        token: str = "vmgrid",
        binary: str = ETCD,
        detached: bool = False,
        tls: bool = False,
    ) -> None:
        if members not in (1, 3, 5):
            raise LabError(f"etcd members: {members}; give 1, 3 or 5")
        self.directory = Path(directory)
        self.size = members
        self.token = token
        self.binary = binary
        self.detached = detached
        """Start members in their own session (the `vmgrid-lab etcd-start` command exits and
        leaves them running; `stop_members` ends them by their pid files)."""
        self.members: list[EtcdMember] = []
        self.tls_dir = self.directory / "tls" if tls else None
        """Certificates of a TLS cluster (ca.crt, the members', the client's); None: plain."""

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def client_tls(self) -> TlsFiles | None:
        """The CA and the client certificate a TLS cluster accepts (None: plain HTTP)."""
        if self.tls_dir is None:
            return None
        return TlsFiles.from_dir(self.tls_dir, CLIENT_NAME)

    def _make_certificates(self) -> None:
        """The CA (reused when it exists), one certificate per member and the client's."""
        assert self.tls_dir is not None
        ca = create_ca(self.directory / "tls-ca")
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        for member in self.members:
            if not (self.tls_dir / f"{member.name}.crt").exists():
                create_etcd_member_cert(self.tls_dir, member.name, ca)
        if not (self.tls_dir / f"{CLIENT_NAME}.crt").exists():
            create_component_cert(self.tls_dir, Identity(Role.CLUSTER, CLIENT_NAME), ca)

    def _tls_flags(self, member: EtcdMember) -> list[str]:
        if self.tls_dir is None:
            return []
        ca, cert = str(self.tls_dir / "ca.crt"), str(self.tls_dir / f"{member.name}.crt")
        key = str(self.tls_dir / f"{member.name}.key")
        return [
            "--cert-file", cert, "--key-file", key,
            "--client-cert-auth", "--trusted-ca-file", ca,
            "--peer-cert-file", cert, "--peer-key-file", key,
            "--peer-client-cert-auth", "--peer-trusted-ca-file", ca,
        ]  # fmt: skip

    def start(self, timeout_s: float = 30.0) -> EtcdCluster:
        """Start every member and wait until each is healthy; LabError says which is not."""
        if shutil.which(self.binary) is None:
            raise LabError(f"{self.binary}: not found; `make install` installs etcd-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * self.size)
        self.members = [
            EtcdMember(
                name=f"etcd{i}",
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                data_dir=self.directory / f"etcd{i}.data",
                log_file=self.directory / f"etcd{i}.log",
                scheme="https" if self.tls_dir is not None else "http",
            )
            for i in range(self.size)
        ]
        if self.tls_dir is not None:
            self._make_certificates()
        for member in self.members:
            self._launch(member)
        try:
            for member in self.members:
                self._wait_healthy(member, timeout_s)
        except LabError:
            self.stop()
            raise
        (self.directory / ENDPOINTS_FILE).write_text(",".join(self.endpoints) + "\n")
        return self

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def _launch(self, member: EtcdMember) -> None:
        argv = [
            self.binary,
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", self._initial_cluster(),
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", "existing" if member.data_dir.exists() else "new",
            # Fast elections on loopback: a member loss is noticed within half a second.
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            *self._tls_flags(member),
        ]  # fmt: skip
        log = member.log_file.open("ab")
        try:
            member.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detached,
            )
        finally:
            log.close()
        record = procs.record_of(member.process.pid)
        if record is not None:
            procs.write_pid_file(self.directory / f"{member.name}.pid", record)

    def _wait_healthy(self, member: EtcdMember, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not member.running():
                tail = member.log_file.read_text(errors="replace")[-600:]
                raise LabError(f"etcd member {member.name} exited: {tail.strip()}")
            if healthy(member.client_url, tls=self.client_tls):
                return
            time.sleep(0.1)
        raise LabError(f"etcd member {member.name} not healthy within {timeout_s} s")

    def kill(self, index: int) -> None:
        """SIGKILL one member (its data stays; `restart` brings it back)."""
        member = self.members[index]
        if member.running() and member.process is not None:
            member.process.kill()
            member.process.wait(timeout=10)

    def restart(self, index: int, timeout_s: float = 30.0) -> None:
        member = self.members[index]
        if not member.running():
            self._launch(member)
            self._wait_healthy(member, timeout_s)

    def raft_leader(self, timeout_s: float = 10.0) -> int:
        """Index of the member that is etcd's raft leader now (as the members' status says;
        waits for one while an election runs). LabError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, member in enumerate(self.members):
                status = _status(member.client_url, self.client_tls)
                if status and status.get("leader") == status.get("header", {}).get("member_id"):
                    return index
            time.sleep(0.1)
        raise LabError(f"no etcd member of {self.directory} leads after {timeout_s:g} s")

    def pause(self, index: int) -> None:
        """SIGSTOP one member: its clients' requests hang as if its network were cut."""
        self._signal(index, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        self._signal(index, signal.SIGCONT)

    def _signal(self, index: int, sig: signal.Signals) -> None:
        member = self.members[index]
        if member.running() and member.process is not None:
            os.kill(member.process.pid, sig)

    def stop(self) -> None:
        """End every member this object started, by its pid."""
        for member in self.members:
            process = member.process
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=tls.ca_file)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _status(client_url: str, tls: TlsFiles | None, timeout_s: float = 1.0) -> dict[str, Any]:
    """The member's ``/v3/maintenance/status`` answer ({} when it does not answer)."""
    request = urllib.request.Request(f"{client_url}/v3/maintenance/status", data=b"{}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=_context(tls)) as answer:
            status: dict[str, Any] = json.loads(answer.read())
            return status
    except (OSError, urllib.error.URLError, ValueError):
        return {}


def healthy(client_url: str, timeout_s: float = 1.0, tls: TlsFiles | None = None) -> bool:
    """Whether the member at `client_url` answers ``/health`` with health true (over TLS with
    the client certificate of `tls`)."""
    context = _context(tls)
    try:
        url = f"{client_url}/health"
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def running_members(directory: Path) -> list[procs.ProcessRecord]:
    """The etcd processes started in `directory` (by their pid files) that still run."""
    found = []
    for pid_file in sorted(Path(directory).glob("etcd*.pid")):
        record = procs.read_pid_file(pid_file)
        if record is None or not procs.is_alive(record):
            continue
        argv = procs.cmdline(record.pid)
        if argv and os.path.basename(argv[0]) == ETCD and str(directory) in " ".join(argv):
            found.append(record)
    return found


def stop_members(directory: Path) -> int:
    """End the etcd members started in `directory` (SIGCONT first, in case one was paused);
    returns how many were running."""
    running = running_members(directory)
    for record in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGCONT)
        procs.terminate(record)
    for pid_file in Path(directory).glob("etcd*.pid"):
        pid_file.unlink(missing_ok=True)
    (Path(directory) / ENDPOINTS_FILE).unlink(missing_ok=True)
    return len(running)


def start_fresh(directory: Path, members: int, tls: bool = False) -> EtcdCluster:
    """A new detached cluster in `directory` (old data removed); LabError when members
    started there still run."""
    directory = Path(directory)
    if running_members(directory):
        endpoints = (
            (directory / ENDPOINTS_FILE).read_text().strip()
            if (directory / ENDPOINTS_FILE).exists()
            else "?"
        )
        raise LabError(
            f"etcd already runs in {directory} ({endpoints}); `vmgrid-lab etcd-stop` first"
        )
    for data in directory.glob("etcd*.data"):
        shutil.rmtree(data)
    return EtcdCluster(directory, members, detached=True, tls=tls).start()
