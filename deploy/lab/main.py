"""`vmgrid-lab`: start, stop and inspect the local KVM lab. The last stdout line is JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmgrid.lab import etcd
from vmgrid.lab.errors import LabError
from vmgrid.lab.host import MAX_HOSTS
from vmgrid.lab.lab import DEFAULT_DIR, Lab
from vmgrid.lab.probe import measure_migration


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-lab",
        description="Real libvirt/QEMU hosts on this machine, with live migration between them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = _command(sub, "start", "start K hosts (keeps those already running)")
    start.add_argument(
        "--hosts", type=int, default=3, help=f"number of hosts, 1..{MAX_HOSTS} (default 3)"
    )
    start.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait per host (default 60)"
    )
    start.add_argument("--tcg", action="store_true", help="force TCG even where KVM works")
    start.add_argument(
        "--network", action="store_true", help="also the guests' bridge with DHCP (docs/lab.md)"
    )
    start.add_argument(
        "--nfs", action="store_true", help="also an NFS server for the guests (implies --network)"
    )
    _command(sub, "stop", "stop the guests and daemons of the lab and remove its taps")
    _command(sub, "status", "show the hosts and whether they run")
    probe = _command(sub, "probe", "time live migrations of a guest host1 <-> host2")
    probe.add_argument("--rounds", type=int, default=3, help="number of migrations (default 3)")
    probe.add_argument("--memory-mib", type=int, default=64, help="guest memory, MiB (default 64)")
    probe.add_argument(
        "--bandwidth-mib-s", type=int, default=0, help="cap in MiB/s (default 0: none)"
    )
    etcd_start = _command(
        sub,
        "etcd-start",
        "start a private etcd cluster on free loopback ports (replicated managers)",
    )
    etcd_start.add_argument(
        "--members", type=int, default=3, choices=(1, 3, 5), help="etcd members (default 3)"
    )
    etcd_start.add_argument(
        "--tls",
        action="store_true",
        help="client and peer TLS with client certificates (made under DIR/etcd/tls)",
    )
    _command(sub, "etcd-stop", "stop the etcd cluster started by etcd-start")
    for command in sub.choices.values():
        command.add_argument(
            "--dir", default=str(DEFAULT_DIR), help=f"lab state directory (default {DEFAULT_DIR})"
        )
        command.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def _command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    return parser


def _human(command: str, result: dict[str, Any]) -> str:
    if command == "etcd-start":
        line = f"etcd in {result['dir']}: --etcd-endpoints {','.join(result['endpoints'])}"
        tls = result.get("tls")
        if tls:
            line += (
                f" --etcd-ca-file {tls['ca_file']} --etcd-cert-file {tls['cert_file']}"
                f" --etcd-key-file {tls['key_file']}"
            )
        return line
    if command == "etcd-stop":
        return f"etcd in {result['dir']}: stopped {result['stopped']} member(s)"
    if command == "probe":
        return f"live migration of a {result['memory_mib']} MiB guest: {result['seconds']} s"
    if command == "stop":
        return (
            f"lab {result['dir']}: stopped {result['daemons']} daemon(s), "
            f"{result['guests']} guest(s), removed {result['taps']} tap(s)"
        )
    lines = [f"lab {result['dir']}: {len(result['hosts'])} host(s)"]
    for host in result["hosts"]:
        alive = "" if host.get("alive", True) else "  [NOT RUNNING]"
        lines.append(
            f"  {host['name']}  pid {host['pid']}  {host['domain_type']}  {host['uri']}{alive}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.command in ("etcd-start", "etcd-stop"):
        directory = Path(args.dir) / "etcd"
        if args.command == "etcd-stop":
            return {"dir": str(directory), "stopped": etcd.stop_members(directory)}
        cluster = etcd.start_fresh(directory, args.members, args.tls)
        pids = [m.pid for m in cluster.members]
        tls = cluster.client_tls
        return {
            "dir": str(directory),
            "endpoints": cluster.endpoints,
            "pids": pids,
            "tls": dataclasses.asdict(tls) if tls is not None else None,
        }
    if args.command == "start":
        lab = Lab(args.dir, answer_timeout_s=args.timeout, use_kvm=not args.tcg)
        hosts = lab.start(args.hosts)
        started: dict[str, Any] = {"dir": str(lab.path), "hosts": [h.to_json() for h in hosts]}
        if args.network or args.nfs:
            started["network"] = lab.start_network().to_json()
        if args.nfs:
            started["nfs"] = lab.start_nfs().to_json()
        return started
    lab = Lab(args.dir)
    if args.command == "stop":
        return lab.stop()
    if args.command == "probe":
        if args.memory_mib < 1 or args.bandwidth_mib_s < 0:
            raise LabError(
                f"--memory-mib {args.memory_mib} --bandwidth-mib-s {args.bandwidth_mib_s}; "
                "accepted: memory >= 1 MiB, bandwidth >= 0 MiB/s (0: uncapped)"
            )
        return measure_migration(lab, args.rounds, args.memory_mib, args.bandwidth_mib_s)
    return lab.status()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except LabError as error:
        print(f"vmgrid-lab: error: {error}", file=sys.stderr)
        return 2
    if not args.json:
        print(_human(args.command, result))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
