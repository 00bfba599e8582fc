"""Revocation: servers re-read the deny list `vmgridctl certs revoke` writes, and refuse every
new call of a listed certificate or holder while everyone else carries on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from tls_servers import CLUSTER_SERVICE, DENIED, HOLDERS, Pair, Servers, call, node_hello, run
from vmgrid.agents.identity import Identity, Role
from vmgrid.coordinator.certs import init_certs, issue_cert
from vmgrid.coordinator.cli.main import main as vmgridctl


def test_a_revoked_certificate_or_holder_may_call_nothing_once_the_list_is_reread(
    tmp_path: Path,
) -> None:
    certs = tmp_path / "certs"
    init_certs(certs)
    for role, name in HOLDERS.items():
        issue_cert(certs, Identity(role, name))
    listing = CLUSTER_SERVICE.methods_by_name["ListNodes"]
    reader = Pair("cluster", CLUSTER_SERVICE, listing, Role.READONLY, True)
    operator = Pair("cluster", CLUSTER_SERVICE, listing, Role.OPERATOR, True)

    async def until_denied(answer: Any) -> None:
        """Poll ``answer()`` until it is PERMISSION_DENIED: the list is re-read at most once
        a second."""
        for _ in range(50):
            result = await answer()  # a status, or (payload, status) for a hello
            if DENIED in (result if isinstance(result, tuple) else (result,)):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("still let in 5 s after revocation")

    async def scenario() -> None:
        async with (
            Servers(certs, tmp_path) as servers,
            servers.channel("cluster", "viewer") as viewer,
            servers.channel("cluster", "vmgridctl") as ctl,
            servers.channel("cluster", "n1") as node,
        ):
            assert await call(viewer, reader) is grpc.StatusCode.OK
            revoke = ["certs", "revoke", "--dir", str(certs)]
            cert = str(certs / "viewer.crt")
            assert await asyncio.to_thread(vmgridctl, [*revoke, "--cert", cert]) == 0
            await until_denied(lambda: call(viewer, reader))
            assert await call(ctl, operator) is grpc.StatusCode.OK
            assert await node_hello(node, "n1") == ("hello_ack", grpc.StatusCode.OK)
            holder = ["--holder", "vmgrid://node/n1"]
            assert await asyncio.to_thread(vmgridctl, [*revoke, *holder]) == 0
            await until_denied(lambda: node_hello(node, "n1"))
            assert await call(ctl, operator) is grpc.StatusCode.OK

    run(scenario())
