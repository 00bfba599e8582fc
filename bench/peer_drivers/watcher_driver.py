"""Drive OpenStack Watcher's VM workload consolidation strategy without an OpenStack.

Run by the interpreter of the peer's own environment (build/peers/watcher), never imported by
vmgrid: ``python watcher_driver.py < problem.json > answer.json``. Watcher's strategy code
(`python-watcher` from PyPI, `VMWorkloadConsolidation`: offload overloaded hosts, consolidate,
optimise, disable empty hosts) runs unchanged on a compute model built in memory (Watcher's own
`ModelRoot`, `ComputeNode` and `Instance` elements) instead of one collected from Nova, and reads
its metrics from an in-memory data source that reports each VM's new demand as its usage (100 %
of its vCPUs, its memory) instead of Gnocchi or Prometheus. Watcher has no rule for VMs that must
be booted, for nodes that must be emptied, nor for spread or placement whitelists: those are not
given to it (the validator on vmgrid's side judges the result). Its migrations come back in the
order it planned them, one per step.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _Metrics:
    """A Watcher data source answering from the problem instead of a metrics service."""

    def __init__(self, memory: dict[str, int]) -> None:
        self.memory = memory

    def get_instance_cpu_usage(self, resource: Any, *args: Any, **kwargs: Any) -> float:
        return 100.0  # percent of its vCPUs: the vCPUs are the VM's demand

    def get_instance_ram_usage(self, resource: Any, *args: Any, **kwargs: Any) -> float:
        return float(self.memory[resource.uuid])

    def get_instance_ram_allocated(self, resource: Any, *args: Any, **kwargs: Any) -> float:
        return float(self.memory[resource.uuid])

    def get_instance_root_disk_size(self, resource: Any, *args: Any, **kwargs: Any) -> float:
        return 0.0

    def get_host_cpu_usage(self, resource: Any, *args: Any, **kwargs: Any) -> None:
        return None  # no host-level measure: Watcher sums its instances

    def get_host_ram_usage(self, resource: Any, *args: Any, **kwargs: Any) -> None:
        return None


def main() -> int:
    problem: dict[str, Any] = json.load(sys.stdin)
    logging.disable(logging.CRITICAL)
    t0 = time.perf_counter()
    from watcher.common import utils  # type: ignore[import-not-found]  # peer environment only
    from watcher.decision_engine.model import element, model_root  # type: ignore[import-not-found]
    from watcher.decision_engine.strategy.strategies import (  # type: ignore[import-not-found]
        vm_workload_consolidation as vwc,
    )

    t_import = time.perf_counter()
    rcs = problem["resources"]
    memory, cpu = rcs["memory"], rcs["cpu"]
    model = model_root.ModelRoot()
    for n in problem["nodes"]:
        cap = n["capacity"]
        node = element.ComputeNode(
            uuid=f"node-{n['name']}",  # one namespace holds nodes and VMs: keep them apart
            hostname=n["name"],
            status=element.ServiceState.ENABLED.value,
            state=element.ServiceState.ONLINE.value,
            memory=cap.get(memory, 0) if memory else 1 << 40,
            memory_mb_reserved=0,
            disk=1,
            disk_gb_reserved=0,
            vcpus=cap.get(cpu, 0) if cpu else 1 << 20,
            vcpu_reserved=0,
            memory_ratio=1.0,
            vcpu_ratio=1.0,
            disk_ratio=1.0,
        )
        model.add_node(node)
    mem_of: dict[str, int] = {}
    unplaced = []
    for v in problem["vms"]:
        demand = v["demand"]
        if v["host"] not in {n["name"] for n in problem["nodes"]}:
            unplaced.append(v["name"])  # a VM to boot: no Watcher strategy places new VMs
            continue
        uuid = f"vm-{v['name']}"
        mem_of[uuid] = demand.get(memory, 0) if memory else 0
        instance = element.Instance(
            uuid=uuid,
            name=v["name"],
            state=element.InstanceState.ACTIVE.value,
            memory=mem_of[uuid],
            disk=0,
            vcpus=demand.get(cpu, 0) if cpu else 0,
        )
        model.add_instance(instance)
        model.map_instance(instance, model.get_node_by_uuid(f"node-{v['host']}"))
    strategy = vwc.VMWorkloadConsolidation(config=utils.Struct())
    strategy._compute_model = model
    strategy._datasource_backend = _Metrics(mem_of)
    t_built = time.perf_counter()
    solution = strategy.execute()
    t_solved = time.perf_counter()
    steps = []
    placements: dict[str, str] = {}
    for action in solution.actions:
        if action["action_type"] != "migrate":
            continue
        params = action["input_parameters"]
        vm = params["resource_name"]
        steps.append([[vm, params["source_node"], params["destination_node"]]])
        placements[vm] = params["destination_node"]
    answer = {
        "status": "done",
        "feasible": True,
        "placements": placements,
        "steps": steps,
        "note": f"{len(unplaced)} VMs to boot not handled (no Watcher strategy boots VMs)"
        if unplaced
        else "",
        "timings": {
            "import_s": round(t_import - t0, 3),
            "build_s": round(t_built - t_import, 3),
            "solve_s": round(t_solved - t_built, 3),
        },
        "version": _version(),
    }
    json.dump(answer, sys.stdout)
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("python-watcher")


if __name__ == "__main__":
    sys.exit(main())
