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
from vmgrid.bench.chaos_check import KNOWN_CONCURRENT, KNOWN_HA_RESTART, KNOWN_STALE_MEMBER

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


def _judge(result: ChaosResult, kinds: tuple[str, ...], known: tuple[str, ...], bug: str) -> None:
    """Fail on any finding of `kinds`; when every one is a known product bug (its detail
    carries one of the `known` marks), mark the test xfailed with the findings until fixed."""
    found = [f for f in result.findings if f.kind in kinds]
    unexplained = [f for f in found if not any(mark in f.detail for mark in known)]
    assert not unexplained, _report(result, kinds)
    if found:
        pytest.xfail(f"{bug}:\n{_report(result, kinds)}")


def test_no_vm_is_lost_or_runs_twice(result: ChaosResult) -> None:
    _judge(
        result,
        ("lost", "duplicated"),
        (KNOWN_STALE_MEMBER,),
        "HA restarts the members its own records place on the failed node, and migrations "
        "by plans do not update those records",
    )


def test_every_rule_holds_at_every_sample(result: ChaosResult) -> None:
    _judge(
        result,
        ("rule",),
        (KNOWN_CONCURRENT, KNOWN_HA_RESTART),
        "the applier checks each action against the placement without the plan's other "
        "moves in flight, so two actions of one plan break a rule together; HA restarts do "
        "not plan under the rule store",
    )
