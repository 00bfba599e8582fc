"""A seeded random run of 300 steps on a real grid (`vmgrid-bench chaos`'s harness): load
changes, migrations through vmgridctl, the operator API and the HTTP API, drains, rule
changes, group submissions, node failures with HA restarts, grid moves and a SIGKILLed manager.
The seed is printed; VMGRID_CHAOS_SEED replays another one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from vmgrid.bench.chaos import ChaosResult, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
STEPS = 300
SEED = int(os.environ.get("VMGRID_CHAOS_SEED", "12"))


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ChaosResult:
    workdir: Path = tmp_path_factory.mktemp("chaos")
    print(f"chaos seed {SEED} (logs in {workdir})")
    return asyncio.run(run_chaos(STEPS, SEED, workdir, echo=False))


def _report(result: ChaosResult, kinds: tuple[str, ...]) -> str:
    found = [f for f in result.findings if f.kind in kinds]
    lines = [
        f"seed {result.seed}: {f.kind} at step {f.step}: {f.subject}: {f.detail}" for f in found
    ]
    steps = {f.step for f in found}
    lines += [line for line in result.log if any(line.startswith(f"step {s} ") for s in steps)]
    return "\n".join(lines)


def test_the_run_exercised_every_kind_of_step(result: ChaosResult) -> None:
    log = "\n".join(result.log)
    for done in (
        "exit 0 plan",  # a vmgridctl migration ran
        "migrate (operator API)",
        "migrate (HTTP API)",
        "drain c1-",
        "rule add chaos-",
        "rule delete chaos-",
        "): running:",  # a group submission started
        "to restart",  # a node failure
        "node return",
        "-> c1: succeeded",  # grid moves both ways
        "-> c2: succeeded",
        "manager restart",
    ):
        assert done in log, f"seed {result.seed}: no step did {done!r}"
    assert result.samples > STEPS


def test_no_vm_is_lost_or_runs_twice(result: ChaosResult) -> None:
    assert result.count("lost") == 0 and result.count("duplicated") == 0, _report(
        result, ("lost", "duplicated")
    )


def test_every_rule_holds_at_every_sample(result: ChaosResult) -> None:
    assert result.count("rule") == 0, _report(result, ("rule",))
