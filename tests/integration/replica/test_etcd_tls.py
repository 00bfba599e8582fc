"""etcd over TLS: a real three-member etcd with client and peer TLS and client certificates
required, certificates made by vmgrid's own certificate code; vmgrid's etcd client and a
replicated ``vmgrid-cluster`` use it, a client without a certificate is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.agents.common.etcd import EtcdClient, EtcdUnavailable
from vmgrid.agents.tls import TlsFiles
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import leaders, start_manager, stop, wait_until


@pytest.fixture(scope="module")
def etcd_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    directory = Path(tmp_path_factory.mktemp("etcd-tls"))
    with EtcdCluster(directory, members=3, tls=True) as cluster:
        yield cluster


def _tls(cluster: EtcdCluster) -> TlsFiles:
    tls = cluster.client_tls
    assert tls is not None
    return tls


def test_members_speak_tls_on_both_ports(etcd_tls: EtcdCluster) -> None:
    assert all(e.startswith("https://127.0.0.1:") for e in etcd_tls.endpoints)
    for member in etcd_tls.members:  # the three formed a cluster over TLS peer links
        assert member.peer_url.startswith("https://")
        assert member.running()


def test_the_client_reads_and_writes_with_its_certificate(etcd_tls: EtcdCluster) -> None:
    async def go() -> tuple[str, int]:
        async with EtcdClient(etcd_tls.endpoints, tls=_tls(etcd_tls)) as etcd:
            await etcd.put("/vmgrid/tls-test/a", "1")
            found = await etcd.get("/vmgrid/tls-test/a")
            count, _ = await etcd.newest("/vmgrid/tls-test/")
            return (found.value if found else ""), count

    assert asyncio.run(go()) == ("1", 1)


def test_a_client_without_a_certificate_is_refused(etcd_tls: EtcdCluster, tmp_path: Path) -> None:
    tls = _tls(etcd_tls)

    async def go(client: EtcdClient) -> None:
        async with client:
            await client.get("/vmgrid/tls-test/a")

    with pytest.raises(EtcdUnavailable):  # the server asks for a certificate; none is sent
        asyncio.run(go(EtcdClient(etcd_tls.endpoints[:1], tls=TlsFiles(tls.ca_file, "", ""))))
    with pytest.raises(EtcdUnavailable):  # plain HTTP to a TLS port
        plain = [e.replace("https://", "http://") for e in etcd_tls.endpoints[:1]]
        asyncio.run(go(EtcdClient(plain)))


def test_a_bad_tls_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(ValueError, match="nope.crt"):
        EtcdClient(["https://127.0.0.1:1"], tls=TlsFiles(missing, "", ""))


@pytest.mark.slow
def test_replicas_lead_and_stand_by_over_tls_etcd(etcd_tls: EtcdCluster, tmp_path: Path) -> None:
    tls = _tls(etcd_tls)
    flags = ("--etcd-ca-file", tls.ca_file, "--etcd-cert-file", tls.cert_file,
             "--etcd-key-file", tls.key_file)  # fmt: skip
    managers = [start_manager(tmp_path, f"t{i}", etcd_tls.endpoints, extra=flags) for i in range(2)]
    try:
        wait_until(lambda: len(leaders(managers)) == 1, 30, "one replica leads over TLS")
        (leader,) = leaders(managers)
        assert "leads cluster replicated with term" in leader.output()
    finally:
        for manager in managers:
            stop(manager.process)
