"""A leading replica's decision loop is supervised like a single manager's: a loop that dies
of a bug is logged and started again, not left dead while the replica keeps leading."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.lab.etcd import EtcdCluster


def test_a_leading_replicas_decision_loop_is_restarted_after_it_dies(
    etcd1: EtcdCluster, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> list[str]:
        replica = ReplicaOptions(
            endpoints=tuple(etcd1.endpoints), lease_ttl_s=2, prefix=f"/test/{uuid.uuid4().hex}"
        )
        options = RuntimeOptions(
            control=ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0),
            replica=replica,
        )
        config = ClusterConfig(cluster_id="c1", listen="127.0.0.1:0", insecure=True)
        runtime = ClusterRuntime(config, options)
        runs: list[str] = []
        run = runtime.loop.run

        async def first_run_fails(stop: asyncio.Event) -> None:
            runs.append("run")
            if len(runs) == 1:
                raise RuntimeError("a bug in the decision loop")
            await run(stop)

        runtime.loop.run = first_run_fails  # type: ignore[method-assign]
        await runtime.start()
        try:
            async with asyncio.timeout(20):
                while len(runs) < 2:
                    await asyncio.sleep(0.05)
            assert runtime._task is not None and not runtime._task.done()
        finally:
            await runtime.stop()
        return runs

    with caplog.at_level(logging.ERROR, logger="vmgrid.agents.common.supervise"):
        assert asyncio.run(scenario()) == ["run", "run"]
    assert "background task decision loop died (RuntimeError: a bug" in caplog.text
