"""Real etcd clusters (Debian's etcd-server) on free loopback ports, one per test module."""

from __future__ import annotations

import contextlib
import os
import signal
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


def _children() -> set[int]:
    """Live (not zombie) child processes of this pytest process."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ...
        if fields[1] == str(me) and fields[0] != "Z":
            found.add(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_process_outlives_its_test() -> Iterator[None]:
    """Stops, by pid, every child process a test started and left running. A test that fails
    while starting its replicas (the second one does not come up within its deadline on a
    loaded host) has not reached the `finally` that stops the first, which then campaigned
    and logged for the rest of the run, loading the host under the tests that followed."""
    before = _children()
    yield
    for pid in sorted(_children() - before):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
