"""The lab's NFS server: NFS-Ganesha (user space; this machine's kernel has no nfsd) serving
one directory over NFSv4 to the lab's guest network only.

Ganesha listens on the host's address on the lab bridge alone (`Bind_addr`) and its export
admits only the bridge's subnet (`CLIENT { Clients = ... }`). It runs without a grace period
(`Graceless`), so a freshly started server serves at once, keeps its recovery state in the
lab directory, and is started and stopped by the lab like its daemons (pid file with the
process's start time, so a reused pid is never signalled).

Guests mount `<host address>:/export` (NFSv4 pseudo path). The exported directory is
`<dir>/nfs/export`, writable by everyone (mode 1777), so that a guest user of any uid can
write there and the host sees the files.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmgrid.lab import procs
from vmgrid.lab.errors import LabError
from vmgrid.lab.network import GuestNetwork

PSEUDO_PATH = "/export"
NFS_PORT = 2049
_SEARCH_PATH = "/usr/bin:/usr/sbin:/bin:/sbin"


@dataclass(frozen=True)
class NfsServer:
    """What a guest mounts (`source`) and where the host sees the files (`export_dir`)."""

    address: str
    export_dir: Path
    pid: int

    @property
    def source(self) -> str:
        return f"{self.address}:{PSEUDO_PATH}"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "export_dir": str(self.export_dir), "pid": self.pid}


def nfs_dir(lab_dir: Path) -> Path:
    return lab_dir / "nfs"


def ganesha_conf(address: str, subnet: str, export_dir: Path, recovery_dir: Path) -> str:
    return f"""# Written by the vmgrid lab; served to the lab's guest network only.
NFS_CORE_PARAM {{
    Protocols = 4;
    Bind_addr = {address};
    NFS_Port = {NFS_PORT};
    Enable_NLM = false;
    Enable_RQUOTA = false;
}}
NFSV4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "{recovery_dir}";
    Minor_Versions = 1, 2;
    # Owners as numbers ("1000"), as the guests' NFS client sends them with sec=sys: owner
    # names would be mapped through this host's accounts, which the guests do not share.
    Only_Numeric_Owners = true;
}}
EXPORT_DEFAULTS {{
    Access_Type = None;
}}
EXPORT {{
    Export_Id = 1;
    Path = "{export_dir}";
    Pseudo = {PSEUDO_PATH};
    Protocols = 4;
    Transports = TCP;
    SecType = sys;
    Squash = No_Root_Squash;
    FSAL {{ Name = VFS; }}
    CLIENT {{
        Clients = {subnet};
        Access_Type = RW;
    }}
}}
LOG {{
    Default_Log_Level = EVENT;
}}
"""


def start(lab_dir: Path, net: GuestNetwork, timeout_s: float = 30.0) -> NfsServer:
    """Serve `<lab_dir>/nfs/export` to `net`; a server already running is kept."""
    ganesha = shutil.which("ganesha.nfsd", path=_SEARCH_PATH)
    if ganesha is None:
        raise LabError(
            "ganesha.nfsd not found; install the Debian packages nfs-ganesha nfs-ganesha-vfs "
            "(make system-deps)"
        )
    base = nfs_dir(lab_dir)
    export_dir, recovery_dir = base / "export", base / "recovery"
    for path in (base, export_dir, recovery_dir):
        path.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    export_dir.chmod(0o1777)
    pid_file = base / "ganesha.pid"
    record = procs.read_pid_file(pid_file)
    if record is not None and procs.is_alive(record):
        return NfsServer(net.host_address, export_dir, record.pid)
    conf = base / "ganesha.conf"
    conf.write_text(ganesha_conf(net.host_address, net.subnet, export_dir, recovery_dir))
    log = base / "ganesha.log"
    child = subprocess.Popen(
        [ganesha, "-F", "-f", str(conf), "-L", str(log), "-p", str(base / "ganesha.nfsd.pid"),
         "-N", "NIV_EVENT"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(base / "ganesha.err").open("ab"),
        start_new_session=True,
    )  # fmt: skip
    started = procs.record_of(child.pid)
    if started is None:
        raise LabError(f"ganesha.nfsd exited at once; see {log}")
    procs.write_pid_file(pid_file, started)
    _wait_listening(net.host_address, started, log, timeout_s)
    return NfsServer(net.host_address, export_dir, started.pid)


def _wait_listening(address: str, record: procs.ProcessRecord, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not procs.is_alive(record):
            raise LabError(f"ganesha.nfsd exited: {_tail(log)}")
        listening = subprocess.run(
            ["ss", "-Htln"], capture_output=True, text=True, check=False
        ).stdout
        # IPv4 or IPv4-mapped IPv6 ([::ffff:a.b.c.d]:2049), as Ganesha binds.
        if any(
            f"{address}:{NFS_PORT}" in line or f"{address}]:{NFS_PORT}" in line
            for line in listening.splitlines()
        ):
            return
        time.sleep(0.2)
    raise LabError(f"ganesha.nfsd does not listen on {address}:{NFS_PORT}: {_tail(log)}")


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"no log at {log}"
    return " | ".join(text[-lines:]) or f"see {log}"


def stop(lab_dir: Path) -> bool:
    """Stop the lab's NFS server; False when none ran."""
    record = procs.read_pid_file(nfs_dir(lab_dir) / "ganesha.pid")
    if record is None or not procs.is_alive(record):
        return False
    procs.terminate(record)
    return True
