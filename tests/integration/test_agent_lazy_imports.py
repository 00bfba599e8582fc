"""The running agent loads prometheus_client only when its metrics endpoint is configured.

`tests/unit/agent/test_agent_imports.py` guards what importing the agent and parsing its
command line load; this runs the real `vmgrid-agent` entry point (`main.main`) as a process on
the embedded test driver, lets it report, stops it with SIGTERM, and reads every module it had
loaded by then (written at exit), so a library pulled in at run time is caught too. Its manager
is unreachable (port 9): the agent still samples and queues reports.
"""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

PROBE = """
import atexit, sys
atexit.register(lambda: open(sys.argv[1], "w").write(repr(sorted(sys.modules))))
from vmgrid.agents.node.main import main
sys.exit(main(sys.argv[2:]))
"""
"""The console script's call (`vmgrid-agent = vmgrid.agents.node.main:main`), plus a dump of
sys.modules at exit; writing it with repr keeps the dump from importing anything."""

REACHABLE = "libvirt at test:///default is reachable"
TIMEOUT_S = 60.0

METRICS_ONLY = ("prometheus_client", "vmgrid.agents.node.metrics", "wsgiref")
"""What serving /metrics loads: the client library, the agent's collector, the HTTP server."""

XML_PARSERS = ("xml", "pyexpat", "_elementtree")
"""What the agent's commands (migration disks, snapshots, saved images) and a real host's MAC
reads parse libvirt's XML with; the test driver's reports need none of it."""


def _wait_until(done: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if done():
            return
        assert process.poll() is None, f"the agent exited early ({process.returncode})"
        time.sleep(0.05)
    raise AssertionError(f"the agent did not {what} within {TIMEOUT_S} s")


def _modules_of_a_running_agent(tmp_path: Path, *flags: str) -> tuple[set[str], str]:
    """(modules loaded when SIGTERM stopped it, its stderr) of an agent run with `flags`."""
    dump, err = tmp_path / "modules.txt", tmp_path / "agent.err"
    command = [sys.executable, "-c", PROBE, str(dump), "--insecure", "--node-id", "n1"]
    command += ["--libvirt-uri", "test:///default", "--manager", "127.0.0.1:9"]
    command += ["--period", "0.2", *flags]
    with err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_until(lambda: REACHABLE in err.read_text(), process, "reach libvirt")
            time.sleep(1.0)  # a few report periods: sampling, the load, the link's dials
            url_file = tmp_path / "metrics.url"
            if url_file.exists():  # scraped once, so the collector itself has run
                with urllib.request.urlopen(url_file.read_text().strip(), timeout=10) as page:
                    assert b'vmgrid_agent_libvirt_up{node="n1"} 1.0' in page.read()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=TIMEOUT_S) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return set(ast.literal_eval(dump.read_text())), err.read_text()


def test_an_agent_without_metrics_never_loads_prometheus_client(tmp_path: Path) -> None:
    modules, _ = _modules_of_a_running_agent(tmp_path)

    assert "vmgrid.agents.node.agent" in modules  # the dump is the agent's
    assert sorted(name for name in modules if name.startswith(METRICS_ONLY)) == []


def test_an_agent_that_runs_no_command_on_the_test_driver_never_loads_an_xml_parser(
    tmp_path: Path,
) -> None:
    modules, _ = _modules_of_a_running_agent(tmp_path)

    assert "vmgrid.agents.node.libvirt_actions" in modules
    assert sorted(name for name in modules if name.startswith(XML_PARSERS)) == []


def test_an_agent_with_metrics_loads_and_serves_them(tmp_path: Path) -> None:
    url_file = tmp_path / "metrics.url"
    modules, err = _modules_of_a_running_agent(
        tmp_path, "--metrics-listen", "127.0.0.1:0", "--metrics-url-file", str(url_file)
    )

    assert "vmgrid-agent metrics on http://127.0.0.1:" in err
    for name in METRICS_ONLY:
        assert name in modules
