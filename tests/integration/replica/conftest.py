"""Real etcd clusters (Debian's etcd-server) on free loopback ports, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.lab.etcd import EtcdCluster


@pytest.fixture(scope="module")
def etcd1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(Path(tmp_path_factory.mktemp("etcd1")), members=1) as cluster:
        yield cluster


@pytest.fixture
def etcd3(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A fresh 3-member cluster per test: tests kill and pause its members."""
    with EtcdCluster(tmp_path / "etcd", members=3) as cluster:
        yield cluster
