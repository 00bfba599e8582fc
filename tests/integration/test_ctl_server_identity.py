"""vmgridctl checks whom it talks to: a cluster command refuses a server whose certificate is
not a cluster manager's, a grid command one that is not the coordinator's, in one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.identity import Identity, Role
from vmgrid.agents.tls import TlsFiles
from vmgrid.coordinator.certs import init_certs, issue_cert
from vmgrid.coordinator.cli.main import main as vmgridctl


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ctl-identity") / "certs"
    init_certs(base)
    issue_cert(base, Identity(Role.NODE, "n1"))
    return base


def ctl_against(certs: Path, served_by: str, argv: list[str]) -> int:
    """Run ``vmgridctl argv ADDRESS`` against a cluster manager serving with the certificate
    ``served_by``; the ADDRESS placeholder in argv is replaced by its address."""

    async def scenario() -> int:
        files = TlsFiles.from_dir(certs, served_by)
        server = ClusterServer(
            ClusterConfig(
                listen="127.0.0.1:0",
                tls_ca_file=files.ca_file,
                tls_cert_file=files.cert_file,
                tls_key_file=files.key_file,
            ).validate()
        )
        await server.start()
        try:
            filled = [server.address if arg == "ADDRESS" else arg for arg in argv]
            return await asyncio.to_thread(vmgridctl, [*filled, "--certs", str(certs)])
        finally:
            await server.stop(0)

    return asyncio.run(scenario())


def test_cluster_command_talks_to_a_cluster_manager(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ctl_against(certs, "cluster-1", ["nodes", "--cluster", "ADDRESS"]) == 0
    assert capsys.readouterr().err == ""


def test_cluster_command_refuses_a_server_with_a_node_certificate(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ctl_against(certs, "n1", ["nodes", "--cluster", "ADDRESS"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("vmgridctl nodes: 127.0.0.1:")
    assert err.endswith(
        "presents the certificate of vmgrid://node/n1 (a node), not a cluster manager's; refused\n"
    )


def test_grid_command_refuses_a_cluster_manager_posing_as_the_coordinator(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ctl_against(certs, "cluster-1", ["clusters", "--coordinator", "ADDRESS"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "vmgrid://cluster/cluster-1 (a cluster manager), not a coordinator's; refused" in err
