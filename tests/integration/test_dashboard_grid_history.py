"""The grid dashboard's history and timeline come from each cluster's ClusterService
(GetHistory, ListPlans): the same JSON as a cluster's own dashboard."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grid_harness import Grid
from test_dashboard_grid import Api, eventually, state_of, with_grid_dashboard

pytestmark = pytest.mark.slow


def test_grid_dashboard_serves_each_clusters_history_and_plans(tmp_path: Path) -> None:
    async def check(grid: Grid, api: Api) -> None:
        status, body = await api.get("/history?node=c2-n1&minutes=10")
        assert status == 200, body
        assert body["node"] == "c2-n1" and body["bucket_s"] == 30 and body["times_unix_ms"]
        usage = grid.runtimes["c2"].manager.state.view("c2-n1").usage
        assert usage is not None
        assert body["series"]["memory_total_bytes"][-1] == usage.memory_total_bytes
        _, listing = await api.get("/vms?cluster=c1")
        mover = next(v for v in listing["vms"] if v["node"] == "c1-n1")
        status, body = await api.get(f"/history?vm={mover['uuid']}")
        assert status == 200 and body["vm"] == mover["uuid"]
        assert len(body["series"]["cpu_used_millicores"]) == len(body["times_unix_ms"]) > 0
        status, body = await api.get("/history?vm=no-such-vm")
        assert status == 404 and "'no-such-vm'" in body["error"]["message"]

        status, body = await api.post(f"/vms/{mover['uuid']}/migrate", {"destination": "c1-n2"})
        assert status == 202
        await eventually(lambda: state_of(grid, mover["uuid"])[1:] == ("c1-n2", "running"))
        plan: dict[str, object] = {}
        for _ in range(100):
            _, timeline = await api.get("/timeline?limit=5")
            plan = next((p for p in timeline["plans"] if p["id"] == body["plan"]), {})
            if plan.get("status") == "succeeded":
                break
            await asyncio.sleep(0.1)
        assert plan["cluster"] == "c1" and plan["progress"] == 1.0
        (action,) = plan["actions"]  # type: ignore[misc]
        assert (action["kind"], action["src"], action["dst"]) == ("migrate", "c1-n1", "c1-n2")
        assert action["name"] == mover["name"]
        assert action["reason"].startswith("operator request: to c1-n2")

    asyncio.run(asyncio.wait_for(with_grid_dashboard(tmp_path, check), 150))
