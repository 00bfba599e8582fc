"""`vmgrid-bench restart-memory`: a group member back from a memory checkpoint after its host died.

A KVM lab of `--hosts` hosts runs a `vmgrid-cluster` with jobs on, its memory checkpoints in the
lab's NFS export directory (`<lab>/nfs/export/checkpoints`, a host directory every lab host
reaches), and a 2-member spread group of `count` guests (deploy/lab/guests.py: a boot sector
that counts BIOS timer ticks in guest memory and stamps its boot with the TSC). Two group
checkpoints are taken, the counters run on for `--advance-s`, then the first member's host
dies (agent SIGKILLed, then `Lab.kill_host`). The counters are read from guest memory through
QEMU's monitor before and after each checkpoint, at the kill, and when each member is back.

`restart_s`: from the manager declaring the node failed (its log line "node X failed") to the
failed member running again on another host from the checkpoint, memory included.
`memory_restored`: for both members, the boot stamp is unchanged (the memory came back, not a
cold boot) and the counter resumed at or above its value just before the second checkpoint
(not from zero, not from the first checkpoint) and below its value at the kill (rolled back).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.bench.failover import (
    HEARTBEAT_TIMEOUT_MS,
    HaLab,
    base_image,
    ha_lab,
    job_document,
    wait,
)
from vmgrid.lab import Lab
from vmgrid.lab.guests import read_counter
from vmgrid.lab.nfs import nfs_dir
from vmgrid.v1 import common_pb2

JOB_NAME = "mem"
Reading = tuple[str, int, int]
"""(host, counter, boot stamp) of one member."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="lab hosts (default 3)")
    parser.add_argument(
        "--advance-s", type=float, default=8.0, help="counting after the checkpoint (8)"
    )
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up after this")
    parser.add_argument("--dir", help="lab directory (default: a new one under /tmp)")


def checkpoint_dir(lab: Lab) -> Path:
    """The lab's NFS export directory's `checkpoints` folder, owned by the lab user."""
    folder = nfs_dir(lab.path) / "export" / "checkpoints"
    owner = lab.guest_dir.stat()
    for part in (folder.parent.parent, folder.parent, folder):
        part.mkdir(exist_ok=True)
        shutil.chown(part, owner.st_uid, owner.st_gid)
    folder.chmod(0o775)
    return folder


def manager_flags(lab: Lab) -> tuple[str, ...]:
    return (f"--checkpoint-dir={checkpoint_dir(lab)}",)


def readings(ha: HaLab, names: list[str], running_only: bool = True) -> dict[str, Reading]:
    """Each member's counter on the live host where it is active (running, or also paused)."""
    found: dict[str, Reading] = {}
    for host in ha.hosts:
        if host.name in ha.dead:
            continue
        with contextlib.closing(host.connect()) as conn:
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                if dom.name() not in names:
                    continue
                state = dom.state()[0]
                if running_only and state != libvirt.VIR_DOMAIN_RUNNING:
                    continue
                with contextlib.suppress(libvirt.libvirtError):
                    counter, stamp = read_counter(dom)
                    found[dom.name()] = (host.name, counter, stamp)
    return found


def _counters(ha: HaLab, names: list[str]) -> dict[str, Reading]:
    found = readings(ha, names)
    missing = sorted(set(names) - set(found))
    if missing:
        raise RuntimeError(f"members not running: {', '.join(missing)}")
    return found


def failure_declared_at(ha: HaLab, host: str) -> float | None:
    """Unix time of the manager's "node HOST failed" log line."""
    for log in sorted(ha.cluster.workdir.glob("manager-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if f" node {host} failed (" in line:
                stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line)
                if stamp:
                    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def scenario(ha: HaLab, lab: Lab, advance_s: float, timeout_s: float) -> dict[str, Any]:
    """Submit, checkpoint twice, kill the first member's host; see the module docstring."""
    job = ha.submit({**job_document(JOB_NAME, 2, base_image(lab, "count")), "cpu_millicores": 100})
    if job.state != common_pb2.JOB_STATE_RUNNING:
        raise RuntimeError(f"job did not start: {job.message}")
    placement = jobs_codec.placement_of(job.message)
    names = sorted(placement)
    wait(
        lambda: (
            all(r[1] >= 20 for r in readings(ha, names).values())
            and len(readings(ha, names)) == len(names)
        ),
        timeout_s,
        "both members counting",
    )
    first = ha.checkpoint(job.job_id)
    time.sleep(3.0)
    before = _counters(ha, names)
    started = time.monotonic()
    second = ha.checkpoint(job.job_id)
    checkpoint_s = time.monotonic() - started
    after = _counters(ha, names)
    time.sleep(advance_s)
    at_kill = _counters(ha, names)
    victim_name, survivor_name = names
    victim = at_kill[victim_name][0]
    print(f"checkpoints {first}, {second}; killing {victim} ({victim_name})", file=sys.stderr)
    ha.kill(victim)
    killed_at = time.time()
    back = _watch_return(ha, victim_name, survivor_name, at_kill, timeout_s)
    declared = failure_declared_at(ha, victim) or killed_at
    members: dict[str, dict[str, Any]] = {}
    for name in names:
        resumed = back[name]
        members[name] = {
            "host_before": at_kill[name][0],
            "host_after": resumed["host"],
            "before_checkpoint": before[name][1],
            "after_checkpoint": after[name][1],
            "at_kill": at_kill[name][1],
            "resumed_at": resumed["counter"],
            "stamp_kept": resumed["stamp"] == at_kill[name][2],
        }
    restored = all(
        m["stamp_kept"] and m["before_checkpoint"] <= m["resumed_at"] < m["at_kill"]
        for m in members.values()
    )
    return {
        "restart_s": round(back[victim_name]["running_at"] - declared, 2),
        "from_kill_s": round(back[victim_name]["running_at"] - killed_at, 2),
        "failure_declared_after_s": round(declared - killed_at, 2),
        "checkpoint_s": round(checkpoint_s, 2),
        "memory_restored": restored,
        "members": members,
        "checkpoints": [first, second],
        "killed_host": victim,
        "heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS,
        "domain_type": "kvm" if lab.kvm else "qemu (TCG)",
    }


def _watch_return(
    ha: HaLab, victim: str, survivor: str, at_kill: dict[str, Reading], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Poll until the victim runs on another host and the survivor was rolled back; each
    member's first reading once back (a restored member is paused until the group resumes:
    its counter then reads exactly the checkpoint's value)."""
    back: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = readings(ha, [victim, survivor], running_only=False)
        seen = now.get(victim)
        if seen is not None and victim not in back:
            back[victim] = {"host": seen[0], "counter": seen[1], "stamp": seen[2]}
        running = victim in back and "running_at" not in back[victim]
        if running and victim in readings(ha, [victim]):
            back[victim]["running_at"] = time.time()
        mate = now.get(survivor)
        if mate is not None and survivor not in back and mate[1] < at_kill[survivor][1]:
            back[survivor] = {"host": mate[0], "counter": mate[1], "stamp": mate[2]}
        if survivor in back and "running_at" in back.get(victim, {}):
            return back
        time.sleep(0.1)
    raise TimeoutError(
        f"after {timeout_s:g} s: {victim} back: {victim in back}, {survivor} rolled back: "
        f"{survivor in back}"
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.hosts < 3:
        raise ValueError(f"--hosts {args.hosts}: need at least 3 (a spread group of 2 and a spare)")
    prefix = "vmgrid-restart-mem-"
    with ha_lab(args.hosts, args.dir, prefix, manager_flags) as (lab, ha):
        return {"hosts": args.hosts, **scenario(ha, lab, args.advance_s, args.timeout_s)}
