"""Background loops under ``supervise``: logged and restarted when they die, stopped on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import pytest
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as gm
from vmgrid.agents.common.supervise import Supervised, supervise
from vmgrid.agents.wire_limits import MAX_QUANTITY


def test_a_loop_that_raises_is_logged_with_its_exception_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise OverflowError(f"run {len(runs)} overflowed")

    async def main() -> Supervised:
        record = Supervised("flaky")
        await asyncio.wait_for(supervise(flaky, "flaky", first_delay_s=0.01, record=record), 5)
        return record

    with caplog.at_level(logging.ERROR, logger="vmgrid.agents.common.supervise"):
        record = asyncio.run(main())
    assert runs == [0, 1, 2]
    assert record.restarts == 2 and isinstance(record.last_error, OverflowError)
    lines = [r for r in caplog.records if "background task flaky died" in r.getMessage()]
    assert len(lines) == 2
    assert "OverflowError: run 1 overflowed" in lines[0].getMessage()
    assert lines[0].exc_info is not None


def test_the_restart_delay_doubles_up_to_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    times: list[float] = []

    async def failing() -> None:
        times.append(asyncio.get_running_loop().time())
        raise RuntimeError("always")

    async def main() -> None:
        task = supervise(failing, "failing", first_delay_s=0.02, max_delay_s=0.08)
        while len(times) < 6:  # five restarts, however slowly a loaded host runs them
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="vmgrid.agents.common.supervise"):
        asyncio.run(main())
    died = [r.args for r in caplog.records if "task failing died" in r.getMessage()]
    delays = [cast(float, args[3]) for args in died[:5] if isinstance(args, tuple)]  # as logged
    assert delays == [0.02, 0.04, 0.08, 0.08, 0.08]  # doubled, then capped
    gaps = [b - a for a, b in zip(times[:5], times[1:6], strict=True)]
    assert all(gap >= delay - 0.001 for gap, delay in zip(gaps, delays, strict=True)), gaps


def test_cancelling_a_supervised_task_stops_it_without_a_restart() -> None:
    started = 0

    async def forever() -> None:
        nonlocal started
        started += 1
        await asyncio.sleep(3600)

    async def main() -> asyncio.Task[None]:
        task = supervise(forever, "forever")
        await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task

    task = asyncio.run(main())
    assert task.cancelled() and started == 1


def test_cluster_totals_beyond_int64_are_clamped_when_encoded() -> None:
    huge = gm.Capacity(cpu_millicores=2**63 - 1 + 2**63, memory_bytes=2**70, network_bps=-5)
    summary = gm.ClusterSummary(
        sequence=1,
        sent_at_unix_ns=1_800_000_000 * 10**9,
        capacity=huge,
        usage=huge,
        movable_vms=(),
        health=gm.ClusterHealth(gm.HealthState.HEALTHY, 1, 0, 0, ""),
    )
    wire = grid_codec.encode_summary(summary)
    assert wire.capacity.cpu_millicores == MAX_QUANTITY
    assert wire.capacity.memory_bytes == MAX_QUANTITY
    assert wire.capacity.network_bps == 0
    decoded = grid_codec.decode_summary(wire, "c1")
    assert decoded.capacity.cpu_millicores == MAX_QUANTITY
