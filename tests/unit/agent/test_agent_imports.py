"""The agent runs on every compute node: it must not drag in the manager's heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "ortools", "networkx", "prometheus_client", "pycdlib", "aiohttp", "sqlite3")


def test_agent_process_imports_no_heavy_library_and_nothing_of_the_coordinator() -> None:
    probe = (
        "import json, sys, vmgrid.agents.node.main; "
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert [m for m in HEAVY if m in loaded] == []
    assert [m for m in loaded if m.startswith(("vmgrid.coordinator", "vmgrid.solver"))] == []
