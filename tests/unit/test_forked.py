"""forked.run_forked: the child's result comes back, its failure is named, a hung child dies."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vmgrid.agents.cluster.decide.forked import (
    CHILD_NICE,
    FORK_AVAILABLE,
    ForkedError,
    run_forked,
)

pytestmark = pytest.mark.skipif(not FORK_AVAILABLE, reason="forked decisions need Linux fork")


def test_child_computes_on_the_parents_memory_as_of_the_fork() -> None:
    data = {"vms": list(range(1000))}

    async def scenario() -> tuple[int, int]:
        result = await run_forked(lambda: (os.getpid(), sum(data["vms"])), 10)
        return result

    pid, total = asyncio.run(scenario())
    assert pid != os.getpid() and total == sum(range(1000))


def test_child_runs_niced_and_the_parent_keeps_its_priority() -> None:
    """The decision yields the cores to the manager's report handling (forked.CHILD_NICE)."""
    parent = os.nice(0)
    child = asyncio.run(run_forked(lambda: os.nice(0), 10))
    assert child == min(19, parent + CHILD_NICE) and child > parent or parent == 19
    assert os.nice(0) == parent


def test_child_changes_do_not_reach_the_parent() -> None:
    data = {"x": 1}

    def mutate() -> int:
        data["x"] = 2
        return data["x"]

    assert asyncio.run(run_forked(mutate, 10)) == 2
    assert data["x"] == 1


def test_failure_in_the_child_is_raised_with_its_traceback() -> None:
    def fail() -> None:
        raise ValueError("bad snapshot 42")

    with pytest.raises(ForkedError, match="bad snapshot 42"):
        asyncio.run(run_forked(fail, 10))


def test_child_busy_past_the_timeout_is_killed_and_the_collector_is_back_on() -> None:
    before = gc.isenabled()

    async def scenario() -> None:
        await run_forked(lambda: time.sleep(30), 0.5)

    started = time.monotonic()
    with pytest.raises(ForkedError, match="still busy after 0.5 s"):
        asyncio.run(scenario())
    assert time.monotonic() - started < 10
    assert gc.isenabled() == before


def test_event_loop_keeps_running_while_the_child_works() -> None:
    async def scenario() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        await run_forked(lambda: time.sleep(0.5), 10)
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) >= 10


def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import asyncio, os, time\n"
        "from vmgrid.agents.cluster.decide.forked import run_forked\n"
        "def work():\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "asyncio.run(run_forked(work, 120))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, f"child {child} outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
