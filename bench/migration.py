"""`vmgrid-bench migration --guest linux`: live migrations of a Debian guest that dirties
memory, through the cluster manager, measured and compared with the planner's estimate.

A lab of two hosts with its guest network, one `vmgrid-agent` per host and a `vmgrid-cluster`
(`--migration-bandwidth-mbit`, the per-migration cap the manager passes to libvirt). One
256 MiB guest is submitted as a job (`vmgrid.bench.submission`) and booted once; it streams a
UDP datagram every 10 ms to the host (`migration_probe`). For each working set in
`--working-sets-mib` (0: idle) the guest runs `stress-ng --vm 1 --vm-bytes N --vm-keep`, which
rewrites those N MiB over and over, and is migrated `--migrations-per-load` times back and
forth with `vmgridctl migrate NAME NODE` (an operator migration: one plan, run by the
manager's one applier). Before each migration the source's libvirt measures the guest's dirty
rate (`virDomainStartDirtyRateCalc`, 1 s) and the estimate is made from what is known then;
after it, the destination's job statistics give the duration (`time_elapsed`), bytes, rounds
and QEMU's downtime; the stream's longest gap gives the downtime the network saw. A migration
not done within `--timeout-s` is cancelled (`vmgridctl cancel`) and counted as aborted.

Estimates (`vmgrid.solver.migration_time`): `naive` is the planner's memory x 8 / bandwidth;
`predicted` is pre-copy round by round from the guest's resident memory (the resident pages
of the source QEMU's guest-RAM mapping that are not all zeros, or the non-zero pages the last
migration sent if fewer: pages the guest touched but left zero are resident yet skipped), the
dirty rate, the cap and the fixed cost learned from the latest migrations before it (the
manager's own learner, `MigrationFixedCost`, fed the same job statistics); `plan` is the
manager's own (its plan's duration), from what the source's agent reported of the guest
(resident non-zero memory, dirty rate and dirty set, recorded as `reported` just before the
migration is asked for) and the fixed cost it learned from the migrations before (libvirt's
job statistics, which the source's agent sends with each result; 0.7 s before any).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import libvirt
from vmgrid.agents.cluster.state.migration_estimate import MigrationFixedCost, MigrationLink
from vmgrid.agents.node.migration import job_from_completed_stats
from vmgrid.bench.lab_cluster import bench_dir, require_hypervisor
from vmgrid.bench.migration_lost import lost_guest_evidence
from vmgrid.bench.migration_probe import (
    MIB,
    HostPinger,
    JobFigures,
    StreamReceiver,
    dirty_rate_mib_s,
    gaps_over,
    guest_ram_resident_mib,
    guest_sender_command,
    longest_gap,
    nonzero_resident_mib,
)
from vmgrid.bench.migration_record import GUEST_MEMORY_MIB, Record, result, working_sets
from vmgrid.bench.migration_switchover import (
    LifecycleWatch,
    background_gap_ms,
    switchover,
)
from vmgrid.bench.submission import JOB_NAME, USER, SubmissionLab
from vmgrid.lab import Lab, LabHost
from vmgrid.lab.linux import guest_image, mac_addresses, ssh
from vmgrid.solver.migration_time import (
    QEMU_DOWNTIME_LIMIT_S,
    PrecopyInput,
    estimate,
    naive_seconds,
)

_BIN = Path(sys.executable).parent
PLAN_ESTIMATE = re.compile(r'"estimated_duration_ms": "(\d+)"')
REPORTED = {
    "memory_resident_bytes": "resident_mib",
    "memory_dirty_bytes_per_second": "dirty_mib_s",
    "memory_dirty_set_bytes": "dirty_set_mib",
}
"""The VM's figures the manager's estimate uses, as its agent reported them (#16)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guest", choices=("linux",), default="linux",
                        help="the guest: linux (the Debian image; default)")  # fmt: skip
    parser.add_argument("--working-sets-mib", default="0,4,12",
                        help="stress-ng --vm-bytes per load, MiB, 0 = idle (default 0,4,12)")  # fmt: skip
    parser.add_argument("--migrations-per-load", type=int, default=3,
                        help="migrations at each load, alternating hosts (default 3)")  # fmt: skip
    parser.add_argument("--bandwidth-mbit", type=int, default=400,
                        help="the manager's per-migration cap, Mbit/s (default 400)")  # fmt: skip
    parser.add_argument("--auto-converge", action="store_true",
                        help="run the manager with --migration-auto-converge")  # fmt: skip
    parser.add_argument("--max-downtime-ms", type=int, default=0,
                        help="the manager's --migration-max-downtime-ms (default 0: QEMU's "
                             "300 ms)")  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=180.0,
                        help="cancel a migration that takes longer (default 180)")  # fmt: skip
    parser.add_argument("--boot-timeout-s", type=float, default=900.0,
                        help="longest wait for the guest's first boot (default 900)")  # fmt: skip
    parser.add_argument("--dir", help="work directory (default: a new one under /tmp)")


def running_plans(plans_json: str) -> list[str]:
    """Ids of the running plans in `vmgridctl plans --output json` (none if unreadable)."""
    try:
        plans = json.loads(plans_json).get("plans", [])
    except (ValueError, AttributeError):
        return []
    return [p["plan_id"] for p in plans if p.get("state") == "PLAN_STATE_RUNNING"]


class MigrationBench:
    """The guest, its probe and its migrations on a started `SubmissionLab`."""

    def __init__(self, sub: SubmissionLab, args: argparse.Namespace) -> None:
        self.sub, self.args = sub, args
        self.link = MigrationLink(args.bandwidth_mbit * 1_000_000)
        self.rate_mib_s = float(self.link.rate_mib_s)  # the cap as libvirt gets it: whole MiB/s
        self.fixed = MigrationFixedCost()  # the manager's rule: median of the last three
        self.sent_mib: float | None = None
        self.records: list[Record] = []
        self.receiver = StreamReceiver(sub.net.host_address)
        self._pinger: HostPinger | None = None
        self.watch: LifecycleWatch | None = None
        self.name = JOB_NAME  # a job of one member: its VM has the job's name
        self.address = ""
        self.key = sub.workdir / "id_ed25519"

    @property
    def pinger(self) -> HostPinger:
        if self._pinger is None:
            raise RuntimeError("boot() the guest first: the pinger starts with it")
        return self._pinger

    def boot(self) -> dict[str, Any]:
        reached = self.sub.submit_and_reach(1, self.args.boot_timeout_s)
        self.address = reached["checks"][0]["address"]
        self.guest(guest_sender_command(self.sub.net.host_address, self.receiver.port))
        # a guest lost after a migration can still print its kernel's backtrace on the serial
        # console (migration_lost): SysRq on, every kernel message to the console
        self.guest("sudo -n sysctl -q kernel.sysrq=1; sudo -n dmesg -n 8; true")
        self._pinger = HostPinger(self.address)
        self.watch = LifecycleWatch([(h.name, h.uri) for h in self.sub.hosts], self.name)
        if not self.wait_for_stream(time.monotonic(), 120):
            raise RuntimeError("the guest's timestamp stream did not start within 120 s")
        if not self.wait_for_replies(time.monotonic(), 30):
            raise RuntimeError(f"the guest at {self.address} does not answer pings")
        return reached

    def guest(self, command: str) -> str:
        """`command` over SSH; a refused or timed-out connection (255: a loaded TCG guest can
        take seconds to answer just after a migration) is tried again for up to 60 s."""
        deadline = time.monotonic() + 60
        result = ssh(self.address, USER, self.key, command, timeout_s=60)
        while result.returncode == 255 and time.monotonic() < deadline:
            time.sleep(1.0)
            result = ssh(self.address, USER, self.key, command, timeout_s=60)
        if result.returncode != 0:
            raise RuntimeError(f"guest command {command[:60]!r} failed: {result.stderr.strip()}")
        return result.stdout

    def load(self, mib: int) -> None:
        self.guest("pkill -x stress-ng; true")
        if mib > 0:
            self.guest(f"nohup stress-ng --vm 1 --vm-bytes {mib}M --vm-keep --timeout 0 "
                       ">/dev/null 2>&1 </dev/null &")  # fmt: skip
        time.sleep(5)  # stress-ng maps and first writes its working set

    def where(self) -> tuple[LabHost, LabHost, libvirt.virDomain]:
        found = self.sub.member_domains([self.name])
        if self.name not in found:
            raise RuntimeError(f"{self.name} runs on no lab host")
        host_name, dom = found[self.name]
        src = next(h for h in self.sub.hosts if h.name == host_name)
        dst = next(h for h in self.sub.hosts if h.name != host_name)
        return src, dst, dom

    def resident(self, src: LabHost) -> float:
        """The guest's resident RAM on `src` that is not all zeros (its QEMU's guest-RAM
        mapping, read through /proc), else the mapping's resident set, else its size."""
        pid_files = list(Path(src.dir).rglob(f"{self.name}.pid"))
        try:
            pid = int(pid_files[0].read_text().strip())
            smaps = Path(f"/proc/{pid}/smaps").read_text()
        except (IndexError, ValueError, OSError):
            return float(GUEST_MEMORY_MIB)
        found = nonzero_resident_mib(pid, GUEST_MEMORY_MIB)
        if found is None:
            found = guest_ram_resident_mib(smaps, GUEST_MEMORY_MIB)
        return float(GUEST_MEMORY_MIB) if found is None else found

    def dirty_rate(self, src: LabHost, dom: libvirt.virDomain) -> float | None:
        """The source libvirt's 1-second dirty-rate calculation (None where unsupported).
        The agent runs its own calculations now and then (up to 4 s); QEMU runs one at a time,
        so a refused start is tried again for up to 6 s."""
        deadline = time.monotonic() + 6
        while True:
            try:
                dom.startDirtyRateCalc(1, 0)
                break
            except libvirt.libvirtError as exc:
                if time.monotonic() >= deadline:
                    print(f"dirty rate: {exc}", file=sys.stderr)
                    return None
                time.sleep(0.5)
        deadline = time.monotonic() + 10
        conn = dom.connect()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            stats = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
            rate = dirty_rate_mib_s(stats[0][1]) if stats else None
            if rate is not None:
                return rate
        return None

    def reported(self) -> dict[str, float] | None:
        """What the manager knows of the guest when the migration is asked for (#16): the
        figures its agent reported (`vmgridctl vms --output json`), in MiB and MiB/s."""
        argv = [str(_BIN / "vmgridctl"), "vms", "--name", self.name, "--cluster",
                self.sub.cluster.address, "--insecure", "--output", "json"]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        try:
            usage = json.loads(result.stdout)["vms"][0]["usage"]
        except (ValueError, KeyError, IndexError, TypeError):
            print(f"vmgridctl vms: {result.stderr.strip()[:200]}", file=sys.stderr)
            return None
        return {key: round(int(usage.get(name, 0)) / MIB, 1) for name, key in REPORTED.items()}

    def migrate_once(self, load_mib: int) -> Record:
        src, dst, dom = self.where()
        reported = self.reported()
        dirty = self.dirty_rate(src, dom)
        resident = self.resident(src)
        if self.sent_mib is not None:  # non-zero pages the last migration sent: tighter
            resident = min(resident, self.sent_mib)
        inputs = PrecopyInput(
            resident_mib=resident,
            rate_mib_s=self.rate_mib_s,
            dirty_mib_s=dirty or 0.0,
            working_set_mib=float(load_mib) if load_mib and dirty is not None else None,
            fixed_s=self.fixed.seconds(),
            downtime_limit_s=self.args.max_downtime_ms / 1000 or QEMU_DOWNTIME_LIMIT_S,
        )
        predicted = estimate(inputs)
        naive = naive_seconds(GUEST_MEMORY_MIB, self.rate_mib_s)
        t0 = time.monotonic()
        ok, message = self.operator_migrate(dst.name)
        t1 = time.monotonic()
        plan_ms = PLAN_ESTIMATE.search(message)
        answers = self.wait_for_replies(t1, 10.0)
        self.wait_for_stream(t1, 20.0)
        record = Record(
            load_mib=load_mib,
            src=src.name,
            dst=dst.name,
            dirty_mib_s=dirty,
            resident_mib=round(resident, 1),
            predicted_s=round(predicted.seconds, 2),
            predicted_converges=predicted.converges,
            predicted_sent_mib=round(predicted.sent_mib, 1),
            naive_s=round(naive, 2),
            plan_s=int(plan_ms.group(1)) / 1000 if plan_ms else None,
            reported=reported,
            operator_s=round(t1 - t0, 2),
            aborted=not ok,
            message=message[-300:],
        )
        if not answers:  # the guest stopped answering: keep what the lab shows
            try:
                _, _, now = self.where()
                mac = mac_addresses(now)[0]
                record.lost = lost_guest_evidence(self.sub.net.bridge, mac, self.address, now)
            except (RuntimeError, OSError, IndexError, libvirt.libvirtError) as exc:
                record.lost = {"error": str(exc)}
            print(f"guest lost after migration: {json.dumps(record.lost)}", file=sys.stderr)
        replies = self.pinger.arrivals()
        gap = longest_gap(replies, t0, t1)
        record.downtime_gap_ms = None if gap is None else round(gap * 1000, 1)
        record.ping_gaps = [
            (round(b - 3, 3), n) for b, n in gaps_over(replies, t0 - 3, t1 + 3, 0.05)
        ]
        record.ping_hz = round(sum(1 for a in replies if t0 - 3 <= a < t0) / 3, 1)
        record.background_gap_ms = background_gap_ms(replies, t0 - 3, t0)
        stream_gap = longest_gap(self.receiver.arrivals(), t0, t1)
        record.guest_stream_gap_ms = None if stream_gap is None else round(stream_gap * 1000, 1)
        if ok:
            with contextlib.closing(dst.connect()) as conn:
                stats = conn.lookupByName(self.name).jobStats(
                    libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
                )
            job = JobFigures.from_stats(stats)
            record.job = {k: round(v, 3) for k, v in asdict(job).items()}
            if self.watch is not None:
                paused, resumed = self.watch.switchover(src.name, dst.name, t0 - 1, t1 + 5)
                split = switchover(replies, paused, resumed, job.downtime_ms, (t0, t1))
                record.events_s = [None if t is None else round(t - t0, 3)
                                   for t in (paused, resumed)]  # fmt: skip
                record.switchover = None if split is None else asdict(split)
            completed = job_from_completed_stats(stats)
            if completed is not None:
                self.fixed.learn(completed, self.link)
            if job.elapsed_s > 0:
                self.sent_mib = job.normal_mib
        self.records.append(record)
        print(json.dumps(asdict(record)), file=sys.stderr)
        return record

    def wait_for_stream(self, after: float, timeout_s: float) -> bool:
        """Wait until the guest's stream has delivered 3 s past `after` (or timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            arrivals = self.receiver.arrivals()
            if arrivals and arrivals[-1] > after + 3:
                return True
            time.sleep(0.2)
        return False

    def wait_for_replies(self, after: float, timeout_s: float) -> bool:
        """Wait until the guest has answered pings for 2 s past `after` (or timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            replies = self.pinger.arrivals()
            if replies and replies[-1] > after + 2:
                return True
            time.sleep(0.2)
        return False

    def operator_migrate(self, node: str) -> tuple[bool, str]:
        """`vmgridctl migrate NAME NODE`; cancelled (and False) after --timeout-s."""
        argv = [str(_BIN / "vmgridctl"), "migrate", self.name, node, "--cluster",
                self.sub.cluster.address, "--insecure", "--output", "json", "--timeout",
                str(int(self.args.timeout_s))]  # fmt: skip
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                    timeout=self.args.timeout_s + 30)  # fmt: skip
        except subprocess.TimeoutExpired:
            self.cancel_running()
            return False, f"no end within {self.args.timeout_s:g} s: cancelled"
        return result.returncode == 0, (result.stdout + result.stderr).strip()

    def cancel_running(self) -> None:
        """`vmgridctl cancel` every running plan: the manager aborts the libvirt job."""
        ctl = [str(_BIN / "vmgridctl"), "--cluster", self.sub.cluster.address, "--insecure"]
        listed = subprocess.run([ctl[0], "plans", *ctl[1:], "--output", "json"],
                                capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
        for plan_id in running_plans(listed.stdout):
            subprocess.run([ctl[0], "cancel", plan_id, *ctl[1:]],
                           capture_output=True, check=False, timeout=60)  # fmt: skip

    def close(self) -> None:
        self.receiver.close()
        if self.watch is not None:
            self.watch.close()
        if self._pinger is not None:
            self._pinger.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = working_sets(args.working_sets_mib)
    if not 0 <= args.max_downtime_ms <= 60_000:
        raise ValueError(f"--max-downtime-ms {args.max_downtime_ms}: give 0 (QEMU's) to 60000")
    if args.migrations_per_load < 1 or args.bandwidth_mbit <= 0 or args.timeout_s <= 0:
        raise ValueError(
            f"--migrations-per-load {args.migrations_per_load} must be >= 1, --bandwidth-mbit "
            f"{args.bandwidth_mbit} and --timeout-s {args.timeout_s} > 0"
        )
    require_hypervisor()
    guest_image()
    base = bench_dir(args.dir, "vmgrid-migration-")
    lab = Lab(base / "lab")
    sub: SubmissionLab | None = None
    bench: MigrationBench | None = None
    try:
        hosts = lab.start(2)
        flags: tuple[str, ...] = (f"--migration-bandwidth-mbit={args.bandwidth_mbit}",)
        if args.auto_converge:
            flags += ("--migration-auto-converge",)
        if args.max_downtime_ms:
            flags += (f"--migration-max-downtime-ms={args.max_downtime_ms}",)
        sub = SubmissionLab(lab, hosts, base, flags)
        sub.start()
        bench = MigrationBench(sub, args)
        boot = bench.boot()
        for mib in sizes:
            bench.load(mib)
            for _ in range(args.migrations_per_load):
                bench.migrate_once(mib)
        return result(bench.records, args, boot)
    finally:
        if bench is not None:
            bench.close()
        if sub is not None:
            sub.stop()
        lab.stop()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
