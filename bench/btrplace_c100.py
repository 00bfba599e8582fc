"""Build the 100 %-constrained sibling of a BtrPlace TDSC workload (``c33`` -> ``c100``).

``python -m vmgrid.bench.btrplace_c100 IN.json.gz OUT.json.gz`` keeps the model and the
constraints of IN and constrains every application the way the TDSC generator constrains a third
of them: an application (``clients.cN`` in the VMs' ``entropy_id``) is made of tiers, runs of
consecutive VM numbers sharing a template; each tier of two VMs or more gets a continuous
``spread``, and the application's last tier gets a continuous ``among`` over the same node groups
(``parts``) as the existing ``among`` constraints. Applications already constrained in IN are
left as they are. The TDSC ``c100`` instances are held out of ``../shared/data``; this script
rebuilds one of the same shape so that the benchmark can be measured on it.

A tier whose running VMs already share a node, or an application spread over several groups, would
make the new constraints impossible from the start; those are counted and skipped (the last JSON
line says how many), so the variant stays feasible.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

_ENTROPY = re.compile(r"^(?:.*\.)?(c\d+)\.VM(\d+)$")


def _open(path: Path, mode: str) -> Any:
    return gzip.open(path, mode + "t") if path.suffix == ".gz" else path.open(mode)


def _hosts(mapping: dict[str, Any]) -> dict[int, int]:
    host: dict[int, int] = {}
    for node, content in mapping["onlineNodes"].items():
        for vm in content.get("runningVMs", []) + content.get("sleepingVMs", []):
            host[vm] = int(node)
    return host


def _tiers(attributes: dict[str, Any]) -> dict[str, list[list[int]]]:
    members: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for vm, attrs in attributes.items():
        match = _ENTROPY.match(str(attrs.get("entropy_id", "")))
        if match is None:
            continue
        members[match.group(1)].append((int(match.group(2)), attrs.get("template", ""), int(vm)))
    tiers: dict[str, list[list[int]]] = {}
    for app, vms in members.items():
        vms.sort()
        runs: list[list[int]] = []
        last = None
        for _, template, member in vms:
            if template != last:
                runs.append([])
                last = template
            runs[-1].append(member)
        tiers[app] = runs
    return tiers


def build(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """The c100 variant of `source` (a parsed TDSC instance) and counts of what was added."""
    model = source["model"]
    constraints: list[dict[str, Any]] = list(source["constraints"])
    amongs = [c for c in constraints if c["id"] == "among"]
    if not amongs:
        raise ValueError("the instance has no among constraint to take the node groups from")
    parts: list[list[int]] = amongs[0]["parts"]
    part_of = {node: i for i, part in enumerate(parts) for node in part}
    host = _hosts(model["mapping"])
    names = {str(vm): attrs for vm, attrs in model["attributes"]["vms"].items()}
    constrained: set[int] = set()
    for c in constraints:
        if c["id"] in ("spread", "among"):
            constrained.update(c["vms"])
    counts = {"spread": 0, "among": 0, "skipped_spread": 0, "skipped_among": 0, "apps": 0}
    for tiers in _tiers(names).values():
        if any(vm in constrained for tier in tiers for vm in tier):
            continue
        counts["apps"] += 1
        for tier in tiers:
            if len(tier) < 2:
                continue
            nodes = [host[vm] for vm in tier if vm in host]
            if len(nodes) != len(set(nodes)):
                counts["skipped_spread"] += 1
                continue
            constraints.append({"id": "spread", "vms": tier, "continuous": True})
            counts["spread"] += 1
        app_vms = [vm for tier in tiers for vm in tier]
        groups = {part_of.get(host[vm], -1) for vm in app_vms if vm in host}
        if len(groups) > 1 or -1 in groups:
            counts["skipped_among"] += 1
            continue
        constraints.append({"id": "among", "vms": tiers[-1], "parts": parts, "continuous": True})
        counts["among"] += 1
    return {**source, "constraints": constraints}, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a TDSC c33 instance (.json or .json.gz)")
    parser.add_argument("out", type=Path, help="where to write the c100 variant (.json.gz)")
    args = parser.parse_args(argv)
    try:
        with _open(args.source, "r") as handle:
            source = json.load(handle)
        variant, counts = build(source)
    except (OSError, ValueError, KeyError) as exc:
        print(f"btrplace_c100: {args.source}: {exc}", file=sys.stderr)
        return 2
    with _open(args.out, "w") as handle:
        json.dump(variant, handle)
    print(json.dumps({"source": str(args.source), "out": str(args.out), **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
