"""Every bad config or start-up condition: one line on stderr naming the bad value, exit 2.

Table-driven over the real programs (`vmgrid-cluster`, `vmgrid-coordinator`, `vmgrid-agent`,
`vmgridctl`, `vmgrid-demo`) started as processes: a port held by another socket or by a first
manager, garbage or mismatched PEM files, a directory where a file is expected, a database that
is not SQLite or not vmgrid's, a garbage CA, a server no TLS handshake completes with. The
processes of the table run a few at a time (each is mostly interpreter start-up).
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from vmgrid.agents.identity import Identity, Role
from vmgrid.coordinator.certs import init_certs, issue_cert

pytestmark = pytest.mark.slow  # some 40 program starts, a few seconds each on a loaded machine

BIN = Path(sys.executable).parent
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class World:
    """What the table's cases point at."""

    dir: Path
    certs: Path
    other_certs: Path
    bad_certs: Path
    garbage: Path
    a_dir: Path
    not_sqlite: Path
    foreign_db: Path
    held: str
    """host:port a plain socket listens on."""
    manager: str
    """host:port of a running mTLS `vmgrid-cluster` started with the defaults."""


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[World], list[str]]
    """Program and arguments."""
    names: Callable[[World], str]
    """What the one line must name."""


def cluster(*args: str) -> list[str]:
    return [str(BIN / "vmgrid-cluster"), *args]


def coordinator(*args: str) -> list[str]:
    return [str(BIN / "vmgrid-coordinator"), *args]


def agent(*args: str) -> list[str]:
    return [str(BIN / "vmgrid-agent"), "--libvirt-uri", "test:///default", *args]


def ctl(*args: str) -> list[str]:
    return [str(BIN / "vmgridctl"), *args]


def tls(w: World, **files: str) -> list[str]:
    """--certs with some of the three files replaced (keys ca, cert, key)."""
    argv = ["--certs", str(w.certs)]
    for key, path in files.items():
        argv += [f"--tls-{key}-file", path]
    return argv


def quiet_cluster(w: World, *args: str) -> list[str]:
    return cluster("--insecure", "--journal", str(w.dir / "ok-journal.sqlite"), *args)


def quiet_coordinator(w: World, *args: str) -> list[str]:
    return coordinator("--insecure", "--state-db", str(w.dir / "ok-grid.sqlite"), *args)


CASES = [
    # vmgrid-cluster
    Case(
        "cluster-config-is-a-directory",
        lambda w: cluster("--config", str(w.a_dir)),
        lambda w: str(w.a_dir),
    ),
    Case("cluster-port-in-use", lambda w: quiet_cluster(w, "--listen", w.held), lambda w: w.held),
    Case(
        "cluster-second-manager-on-the-port",
        lambda w: quiet_cluster(w, "--listen", w.manager),
        lambda w: w.manager,
    ),
    Case(
        "cluster-metrics-port-in-use",
        lambda w: quiet_cluster(w, "--listen", "127.0.0.1:0", "--metrics-listen", w.held),
        lambda w: w.held,
    ),
    Case(
        "cluster-web-port-in-use",
        lambda w: quiet_cluster(w, "--listen", "127.0.0.1:0", "--web-listen", w.held),
        lambda w: w.held,
    ),
    Case(
        "cluster-garbage-certificate",
        lambda w: cluster("--listen", "127.0.0.1:0", *tls(w, cert=str(w.garbage))),
        lambda w: str(w.garbage),
    ),
    Case(
        "cluster-garbage-ca",
        lambda w: cluster("--listen", "127.0.0.1:0", *tls(w, ca=str(w.garbage))),
        lambda w: str(w.garbage),
    ),
    Case(
        "cluster-garbage-key",
        lambda w: cluster("--listen", "127.0.0.1:0", *tls(w, key=str(w.garbage))),
        lambda w: str(w.garbage),
    ),
    Case(
        "cluster-key-of-another-certificate",
        lambda w: cluster("--listen", "127.0.0.1:0", *tls(w, key=str(w.certs / "vmgridctl.key"))),
        lambda w: str(w.certs / "vmgridctl.key"),
    ),
    Case(
        "cluster-certificate-is-a-directory",
        lambda w: cluster("--listen", "127.0.0.1:0", *tls(w, cert=str(w.a_dir))),
        lambda w: str(w.a_dir),
    ),
    Case(
        "cluster-web-token-file-not-toml",
        lambda w: quiet_cluster(
            w,
            "--listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--web-token-file",
            str(w.garbage),
        ),
        lambda w: str(w.garbage),
    ),
    Case(
        "cluster-journal-not-sqlite",
        lambda w: cluster("--insecure", "--listen", "127.0.0.1:0", "--journal", str(w.not_sqlite)),
        lambda w: str(w.not_sqlite),
    ),
    Case(
        "cluster-journal-not-vmgrid",
        lambda w: cluster("--insecure", "--listen", "127.0.0.1:0", "--journal", str(w.foreign_db)),
        lambda w: str(w.foreign_db),
    ),
    Case(
        "cluster-journal-is-a-directory",
        lambda w: cluster("--insecure", "--listen", "127.0.0.1:0", "--journal", str(w.a_dir)),
        lambda w: str(w.a_dir),
    ),
    # vmgrid-coordinator
    Case(
        "coordinator-config-is-a-directory",
        lambda w: coordinator("--config", str(w.a_dir)),
        lambda w: str(w.a_dir),
    ),
    Case(
        "coordinator-port-in-use",
        lambda w: quiet_coordinator(w, "--listen", w.held),
        lambda w: w.held,
    ),
    Case(
        "coordinator-web-port-in-use",
        lambda w: quiet_coordinator(w, "--listen", "127.0.0.1:0", "--web-listen", w.held),
        lambda w: w.held,
    ),
    Case(
        "coordinator-metrics-port-in-use",
        lambda w: quiet_coordinator(w, "--listen", "127.0.0.1:0", "--metrics-listen", w.held),
        lambda w: w.held,
    ),
    Case(
        "coordinator-garbage-certificate",
        lambda w: coordinator(
            "--listen", "127.0.0.1:0", "--state-db", ":memory:", *tls(w, cert=str(w.garbage))
        ),
        lambda w: str(w.garbage),
    ),
    Case(
        "coordinator-key-of-another-certificate",
        lambda w: coordinator(
            "--listen",
            "127.0.0.1:0",
            "--state-db",
            ":memory:",
            *tls(w, key=str(w.certs / "cluster-1.key")),
        ),
        lambda w: str(w.certs / "cluster-1.key"),
    ),
    Case(
        "coordinator-state-db-not-sqlite",
        lambda w: coordinator(
            "--insecure", "--listen", "127.0.0.1:0", "--state-db", str(w.not_sqlite)
        ),
        lambda w: str(w.not_sqlite),
    ),
    Case(
        "coordinator-state-db-not-vmgrid",
        lambda w: coordinator(
            "--insecure", "--listen", "127.0.0.1:0", "--state-db", str(w.foreign_db)
        ),
        lambda w: str(w.foreign_db),
    ),
    Case(
        "coordinator-topology-is-a-directory",
        lambda w: quiet_coordinator(w, "--listen", "127.0.0.1:0", "--topology-file", str(w.a_dir)),
        lambda w: str(w.a_dir),
    ),
    Case(
        "coordinator-web-token-file-not-toml",
        lambda w: quiet_coordinator(
            w,
            "--listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--web-token-file",
            str(w.garbage),
        ),
        lambda w: str(w.garbage),
    ),
    # vmgrid-agent
    Case(
        "agent-garbage-certificate",
        lambda w: agent(
            "--tls-dir", str(w.bad_certs), "--node-id", "n-garbage", "--manager", w.manager
        ),
        lambda w: str(w.bad_certs / "n-garbage.crt"),
    ),
    Case(
        "agent-key-of-another-certificate",
        lambda w: agent(
            "--tls-dir", str(w.bad_certs), "--node-id", "n-swapped", "--manager", w.manager
        ),
        lambda w: str(w.bad_certs / "n-swapped.key"),
    ),
    Case(
        "agent-config-is-a-directory",
        lambda w: agent("--config", str(w.a_dir)),
        lambda w: str(w.a_dir),
    ),
    Case(
        "agent-metrics-port-in-use",
        lambda w: agent("--insecure", "--manager", w.manager, "--metrics-listen", w.held),
        lambda w: w.held,
    ),
    # vmgridctl
    Case(
        "ctl-garbage-certificate",
        lambda w: ctl(
            "nodes", "--cluster", w.manager, "--certs", str(w.bad_certs), "--cert-name", "n-garbage"
        ),
        lambda w: str(w.bad_certs / "n-garbage.crt"),
    ),
    Case(
        "ctl-grid-garbage-certificate",
        lambda w: ctl(
            "clusters",
            "--coordinator",
            w.manager,
            "--certs",
            str(w.bad_certs),
            "--cert-name",
            "n-garbage",
        ),
        lambda w: str(w.bad_certs / "n-garbage.crt"),
    ),
    Case(
        "ctl-server-of-another-ca",
        lambda w: ctl("nodes", "--cluster", w.manager, "--certs", str(w.other_certs)),
        lambda w: w.manager,
    ),
    Case(
        "ctl-certificate-of-another-ca",
        lambda w: ctl("nodes", "--cluster", w.manager, "--certs", str(w.dir / "foreign-client")),
        lambda w: w.manager,
    ),
    Case(
        "ctl-config-is-a-directory",
        lambda w: ctl("nodes", "--config", str(w.a_dir), "--certs", str(w.certs)),
        lambda w: str(w.a_dir),
    ),
    Case(
        "ctl-malformed-address",
        lambda w: ctl("nodes", "--cluster", "no-port-here", "--certs", str(w.certs)),
        lambda w: "no-port-here",
    ),
    Case(
        "ctl-grid-malformed-address",
        lambda w: ctl("clusters", "--coordinator", "host:99999", "--certs", str(w.certs)),
        lambda w: "host:99999",
    ),
    Case(
        "ctl-certs-init-garbage-ca",
        lambda w: ctl(
            "certs",
            "init",
            "--dir",
            str(w.dir / "new-certs"),
            "--ca-dir",
            str(w.dir / "garbage-ca"),
        ),
        lambda w: str(w.dir / "garbage-ca" / "ca.crt"),
    ),
    Case(
        "ctl-certs-init-ca-key-of-another-ca",
        lambda w: ctl(
            "certs",
            "init",
            "--dir",
            str(w.dir / "new-certs-2"),
            "--ca-dir",
            str(w.dir / "mixed-ca"),
        ),
        lambda w: str(w.dir / "mixed-ca" / "ca.key"),
    ),
    # vmgrid-demo
    Case(
        "demo-web-port-in-use",
        lambda w: [str(BIN / "vmgrid-demo"), "--web-listen", w.held],
        lambda w: w.held,
    ),
    Case(
        "demo-state-file-is-a-directory",
        lambda w: [str(BIN / "vmgrid-demo"), "--state-file", str(w.a_dir)],
        lambda w: str(w.a_dir),
    ),
]


def _make_world(base: Path, held: str, manager: str) -> World:
    certs, other = base / "certs", base / "other-certs"
    other_ca = base / "other-ca"
    init_certs(other, ca_dir=other_ca)
    bad = base / "bad-certs"
    bad.mkdir()
    shutil.copy(certs / "ca.crt", bad / "ca.crt")
    (bad / "n-garbage.crt").write_text("this is not a certificate\n")
    shutil.copy(certs / "vmgridctl.key", bad / "n-garbage.key")
    issue_cert(bad, Identity(Role.NODE, "n-swapped"), ca_dir=base / "certs-ca")
    shutil.copy(certs / "vmgridctl.key", bad / "n-swapped.key")
    foreign_client = base / "foreign-client"  # trusts the project CA, presents another's
    foreign_client.mkdir()
    shutil.copy(certs / "ca.crt", foreign_client / "ca.crt")
    for suffix in (".crt", ".key"):
        shutil.copy(other / f"vmgridctl{suffix}", foreign_client / f"vmgridctl{suffix}")
    garbage = base / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    a_dir = base / "a-directory"
    a_dir.mkdir()
    not_sqlite = base / "notes.sqlite"
    not_sqlite.write_text("a text file where a database was expected\n" * 4)
    foreign = base / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    (base / "garbage-ca").mkdir()
    (base / "garbage-ca" / "ca.crt").write_text("garbage\n")
    (base / "garbage-ca" / "ca.key").write_text("garbage\n")
    (base / "mixed-ca").mkdir()
    shutil.copy(base / "certs-ca" / "ca.crt", base / "mixed-ca" / "ca.crt")
    shutil.copy(other_ca / "ca.key", base / "mixed-ca" / "ca.key")
    return World(base, certs, other, bad, garbage, a_dir, not_sqlite, foreign, held, manager)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("startup")
    init_certs(base / "certs")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    held = f"127.0.0.1:{holder.getsockname()[1]}"
    ready = base / "manager.ready"
    # A manager with the defaults and the certificates of 'certs init' (its name: cluster-1).
    argv = cluster("--certs", str(base / "certs"), "--listen", "127.0.0.1:0")
    argv += ["--journal", str(base / "manager.sqlite"), "--ready-file", str(ready)]
    log = (base / "manager.log").open("wb")
    first = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (ready.exists() and ready.read_text().strip()):
            assert first.poll() is None, (base / "manager.log").read_text()
            assert time.monotonic() < deadline, "the first manager did not start"
            time.sleep(0.1)
        yield _make_world(base, held, ready.read_text().strip())
    finally:
        first.terminate()
        first.wait(timeout=TIMEOUT_S)
        log.close()
        holder.close()


@dataclass(frozen=True)
class Outcome:
    code: int
    lines: list[str]


def _run(argv: list[str]) -> Outcome:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    return Outcome(done.returncode, [line for line in done.stderr.splitlines() if line.strip()])


@pytest.fixture(scope="module")
def outcomes(world: World) -> dict[str, Outcome]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case.name: pool.submit(_run, case.argv(world)) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_start_up_is_one_line_naming_the_value_and_exit_2(
    case: Case, world: World, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[case.name]
    assert outcome.code == 2, outcome.lines
    assert len(outcome.lines) == 1, outcome.lines
    assert case.names(world) in outcome.lines[0]


def test_the_first_manager_with_the_certs_init_defaults_keeps_serving(world: World) -> None:
    """The second manager was refused and the first (cert-name defaulting to its cluster id,
    cluster-1, the name 'certs init' gives) still answers vmgridctl."""
    outcome = _run(ctl("nodes", "--cluster", world.manager, "--certs", str(world.certs)))
    assert (outcome.code, outcome.lines) == (0, [])


def test_ctl_against_an_unreachable_manager_is_one_line_without_grpc_logs(world: World) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    outcome = _run(ctl("nodes", "--cluster", closed, "--certs", str(world.certs)))
    assert outcome.code == 3, outcome.lines  # docs/cli.md: 3 = unreachable
    assert len(outcome.lines) == 1, outcome.lines
    assert closed in outcome.lines[0] and "unreachable" in outcome.lines[0]
