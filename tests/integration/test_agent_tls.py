"""mTLS on the node link, process against process: `vmgrid-cluster --certs` and `vmgrid-agent
--tls-dir`, with certificates made by `vmgridctl certs init`.

A signed agent joins; an agent whose certificate another CA signed, one that trusts another CA,
and a plaintext one are refused with a log line that names the cause, and the manager keeps
serving. An agent without a certificate file does not start (exit 2, one line).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc

BIN = Path(sys.executable).parent


class Manager:
    """A `vmgrid-cluster` process serving mTLS with the certs of ``certs``."""

    def __init__(self, workdir: Path, certs: Path, cert_name: str = "cluster-1") -> None:
        self.certs = certs
        ready = workdir / "ready"
        argv = [str(BIN / "vmgrid-cluster"), "--certs", str(certs), "--listen", "127.0.0.1:0"]
        argv += ["--cert-name", cert_name]
        argv += ["--ready-file", str(ready), "--state-dir", str(workdir / "state")]
        argv += ["--report-period-ms", "500", "--heartbeat-timeout-ms", "3000"]
        self.log = workdir / "cluster.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(argv, stdout=sink, stderr=sink)
        wait_until(lambda: ready.exists() and bool(ready.read_text().strip()), "manager ready")
        self.address = ready.read_text().strip()

    def node_ids(self) -> list[str]:
        """Connected nodes, asked over mTLS with the operator's certificate."""
        credentials = channel_credentials(TlsFiles.from_dir(self.certs, "vmgridctl"))
        with grpc.secure_channel(self.address, credentials) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            reply = stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=10)
        connected = cluster_pb2.NODE_STATUS_CONNECTED
        return sorted(node.node_id for node in reply.nodes if node.status == connected)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def wait_until(check: object, what: str, timeout_s: float = 30.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


def start_agent(address: str, log: Path, node_id: str, *flags: str) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "vmgrid-agent"), "--manager", address, "--node-id", node_id]
    argv += ["--libvirt-uri", "test:///default", "--period", "0.5", *flags]
    with log.open("wb") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=sink)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


def agent_log_says(log: Path, text: str) -> None:
    """Wait for ``text`` in the agent's log (its first dial is logged at once)."""
    wait_until(lambda: text in log.read_text(), f"{text!r} in {log.name}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("certs")
    dirs = {"good": base / "good", "other": base / "other", "foreign": base / "foreign"}
    for name, nodes in (("good", ("tls-n1", "intruder-2")), ("other", ("intruder",))):
        assert vmgridctl(["certs", "init", "--dir", str(dirs[name])]) == 0
        for node in nodes:
            issue = ["certs", "issue", "--role", "node", "--name", node, "--dir", str(dirs[name])]
            assert vmgridctl(issue) == 0
    # Trusts the right CA but presents a certificate signed by another one.
    dirs["foreign"].mkdir()
    (dirs["foreign"] / "ca.crt").write_bytes((dirs["good"] / "ca.crt").read_bytes())
    for suffix in ("crt", "key"):
        agent_file = dirs["other"] / f"intruder.{suffix}"
        (dirs["foreign"] / f"intruder.{suffix}").write_bytes(agent_file.read_bytes())
    return dirs


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]) -> Iterator[Manager]:
    server = Manager(tmp_path_factory.mktemp("tls-cluster"), certs["good"])
    try:
        yield server
    finally:
        server.stop()


def test_agent_with_a_signed_certificate_joins_the_tls_manager(
    manager: Manager, certs: dict[str, Path], tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    agent = start_agent(manager.address, log, "tls-n1", "--tls-dir", str(certs["good"]))
    try:
        wait_until(lambda: manager.node_ids() == ["tls-n1"], "tls-n1 connected")
        agent_log_says(log, "connected to manager")
    finally:
        stop(agent)


@pytest.mark.parametrize(
    ("certs_name", "flags", "named"),
    [
        ("foreign", (), "refused this agent's certificate"),
        ("other", (), "TLS handshake failed"),
        (None, ("--insecure",), "most likely serves TLS; give --tls-dir DIR instead of --insecure"),
    ],
    ids=["cert-from-another-ca", "trusts-another-ca", "insecure"],
)
def test_refused_agents_log_the_cause_and_the_manager_keeps_serving(
    manager: Manager,
    certs: dict[str, Path],
    tmp_path: Path,
    certs_name: str | None,
    flags: tuple[str, ...],
    named: str,
) -> None:
    tls = ["--tls-dir", str(certs[certs_name])] if certs_name else []
    log = tmp_path / "agent.log"
    agent = start_agent(manager.address, log, "intruder", *tls, *flags)
    try:
        agent_log_says(log, named)
        assert agent.poll() is None, "a refused agent keeps retrying"
        assert "intruder" not in manager.node_ids()
    finally:
        stop(agent)
    assert manager.process.poll() is None


def test_agent_saying_hello_as_another_node_is_refused_and_told_why(
    manager: Manager, certs: dict[str, Path], tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    tls = ("--tls-dir", str(certs["good"]), "--tls-name", "tls-n1")
    agent = start_agent(manager.address, log, "posing-n9", *tls)
    try:
        agent_log_says(
            log,
            "refused this agent: certificate vmgrid://node/tls-n1 may not speak for node "
            "'posing-n9'",
        )
        assert "posing-n9" not in manager.node_ids()
    finally:
        stop(agent)
    assert "certificate vmgrid://node/tls-n1 said hello as 'posing-n9'; refused" in (
        manager.log.read_text()
    )


def test_agent_refuses_a_server_that_presents_a_node_certificate(
    certs: dict[str, Path], tmp_path: Path
) -> None:
    """The server's certificate is the project CA's, but a node's: not a manager to obey."""
    (tmp_path / "impostor").mkdir()
    impostor = Manager(tmp_path / "impostor", certs["good"], cert_name="intruder-2")
    log = tmp_path / "agent.log"
    agent = start_agent(impostor.address, log, "tls-n1", "--tls-dir", str(certs["good"]))
    try:
        agent_log_says(log, "the server's certificate is not a cluster manager's")
        assert "connected to manager" not in log.read_text()
    finally:
        stop(agent)
        impostor.stop()


def test_agent_without_its_certificate_file_exits_2_naming_it(
    certs: dict[str, Path], tmp_path: Path
) -> None:
    ca_only = tmp_path / "ca-only"
    ca_only.mkdir()
    (ca_only / "ca.crt").write_bytes((certs["good"] / "ca.crt").read_bytes())
    done = subprocess.run(
        [str(BIN / "vmgrid-agent"), "--tls-dir", str(ca_only), "--tls-name", "agent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"vmgrid-agent: TLS cert file '{ca_only / 'agent.crt'}': No such file or directory"
    )
