"""The coordinator's dashboard API over a real grid: a coordinator, two cluster runtimes and
simulated agents; nodes and VMs come from each cluster's ClusterService, actions go to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from grid_harness import Grid, two_clusters
from vmgrid.coordinator.web.launch import Dashboard, serve_coordinator_dashboard

pytestmark = pytest.mark.slow
READ, OPERATOR = "read-token-for-grid-tests", "operator-token-for-grid-tests"


class Api:
    def __init__(self, session: aiohttp.ClientSession, dashboard: Dashboard) -> None:
        self.session = session
        self.base = dashboard.server.api_url

    async def get(self, path: str, token: str = READ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.get(self.base + path, headers=headers) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {OPERATOR}"}
        async with self.session.post(self.base + path, json=body or {}, headers=headers) as resp:
            return resp.status, await resp.json()

    async def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {OPERATOR}"}
        async with self.session.put(self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


async def eventually(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def state_of(grid: Grid, vm_uuid: str) -> tuple[str, str, str]:
    [where] = grid.where(vm_uuid)
    return where


async def with_grid_dashboard(tmp_path: Path, test: Callable[[Grid, Api], Awaitable[None]]) -> None:
    token_file = tmp_path / "tokens.toml"
    token_file.write_text(f'read = "{READ}"\noperator = "{OPERATOR}"\n')
    async with two_clusters(tmp_path, vms_per_node=2, time_scale=0.05) as grid:
        dashboard = await serve_coordinator_dashboard(
            grid.coordinator.coordinator, "127.0.0.1:0", str(token_file), tmp_path
        )
        try:
            async with aiohttp.ClientSession() as session:
                await test(grid, Api(session, dashboard))
        finally:
            await dashboard.stop()


def test_grid_dashboard_lists_nodes_and_vms_and_forwards_actions(tmp_path: Path) -> None:
    async def check(grid: Grid, api: Api) -> None:
        status, body = await api.get("/nodes")
        assert status == 200
        nodes = {n["id"]: n for n in body["nodes"]}
        assert sorted(nodes) == ["c1-n1", "c1-n2", "c2-n1", "c2-n2"]
        assert {n["cluster"] for n in nodes.values()} == {"c1", "c2"}
        assert all(len(n["vms"]) == 2 and n["status"] == "connected" for n in nodes.values())

        status, body = await api.get("/vms?cluster=c2")
        assert status == 200
        c2_vms = body["vms"]
        assert len(c2_vms) == 4 and all(vm["state"] == "running" for vm in c2_vms)
        _, body = await api.get("/vms")
        assert len(body["vms"]) == 8

        vm = c2_vms[0]
        status, body = await api.post(f"/vms/{vm['uuid']}/suspend")
        assert status == 200 and body["state"] == "succeeded"
        await eventually(lambda: state_of(grid, vm["uuid"])[2] == "paused")  # the next report
        status, _ = await api.post(f"/vms/{vm['uuid']}/resume")
        assert status == 200
        await eventually(lambda: state_of(grid, vm["uuid"])[2] == "running")
        status, _ = await api.post(f"/vms/{vm['uuid']}/snapshot", {"name": "before"})
        assert status == 200

        mover = next(v for v in body_vms(await api.get("/vms?cluster=c1")) if v["node"] == "c1-n1")
        status, body = await api.post(f"/vms/{mover['uuid']}/migrate", {"destination": "c1-n2"})
        assert status == 202 and body["plan"]
        await eventually(lambda: state_of(grid, mover["uuid"])[1:] == ("c1-n2", "running"))

        status, body = await api.post("/nodes/c2-n1/drain")
        assert status == 200 and body == {"node": "c2-n1", "draining": True}
        assert grid.runtimes["c2"].manager.state.view("c2-n1").draining
        status, body = await api.post("/nodes/c2-n1/undrain")
        assert status == 200 and not grid.runtimes["c2"].manager.state.view("c2-n1").draining

    asyncio.run(asyncio.wait_for(with_grid_dashboard(tmp_path, check), 150))


def test_grid_dashboard_names_what_it_cannot_find_or_do(tmp_path: Path) -> None:
    async def check(grid: Grid, api: Api) -> None:
        status, body = await api.post("/vms/no-such-vm/suspend")
        assert status == 404 and "no-such-vm" in body["error"]["message"]
        status, body = await api.post("/nodes/no-such-node/drain")
        assert status == 404 and "no-such-node" in body["error"]["message"]
        _, listing = await api.get("/vms?cluster=c1")
        vm = listing["vms"][0]
        status, body = await api.post(f"/vms/{vm['uuid']}/migrate", {"destination": "c2-n1"})
        assert status == 400, body
        assert body["error"]["message"].startswith("node 'c2-n1' is not in the cluster")
        status, body = await api.post("/plans/p-1/approve")
        assert status == 409 and "cluster manager" in body["error"]["message"]
        for status, body in (
            await api.get("/rules"),
            await api.get("/rules/check"),
            await api.post("/rules", {"id": "r", "kind": "spread", "vms": ["a", "b"]}),
        ):
            assert status == 409 and "held by each cluster manager" in body["error"]["message"]
        status, body = await api.get("/nodes", token="wrong-token")
        assert status == 401
        await policy_of_each_cluster(grid, api)
        status, body = await api.get("/vms?state=bogus")
        assert status == 400 and body["error"]["field"] == "state"
        assert "'bogus'" in body["error"]["message"] and "running" in body["error"]["message"]

    asyncio.run(asyncio.wait_for(with_grid_dashboard(tmp_path, check), 150))


async def policy_of_each_cluster(grid: Grid, api: Api) -> None:
    """/policy reads a cluster's policy through its manager; a change names its cluster."""
    status, body = await api.get("/policy")
    assert status == 200 and body["cluster"] == "c1" and body["aggressiveness"] == "moderate"
    status, body = await api.put("/policy", {"cpu_high": 0.7})
    assert status == 400 and "?cluster=ID (one of c1, c2)" in body["error"]["message"]
    status, body = await api.put("/policy?cluster=c2", {"cpu_high": 0.7})
    assert status == 200 and body["cluster"] == "c2" and body["cpu_high"] == 0.7
    assert grid.runtimes["c2"].loop.config.operator_policy.cpu_high == 0.7
    assert grid.runtimes["c1"].loop.config.operator_policy.cpu_high == 0.8
    status, body = await api.put("/policy?cluster=c2", {"cpu_high": "lots"})
    assert status == 400 and "policy.cpu_high: 'lots' is not a number" in body["error"]["message"]
    status, body = await api.get("/policy?cluster=c9")
    assert status == 404 and "'c9'" in body["error"]["message"]


def body_vms(reply: tuple[int, Any]) -> list[dict[str, Any]]:
    status, body = reply
    assert status == 200
    return list(body["vms"])
