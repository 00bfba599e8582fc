"""`vmgrid-demo --duration N --state-file F` as a process: the contract of issue #6.

Once up it writes {dashboard, api, token, metrics}; the API (the coordinator's grid view) lists
both clusters' nodes with the token, every component's /metrics passes `promtool check metrics`,
the page is served, and the process stops by itself with exit code 0.

The demo's HA act kills one agent on purpose a few seconds after the state file and restarts it
on the same metrics port once its VMs have been restarted elsewhere, so a metrics URL may not
answer for a few seconds: `read_retrying` waits for it (up to RETRY_S), and the test checks
that the act ran to its end (the node came back and its stale copy was destroyed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DEMO = Path(sys.executable).parent / "vmgrid-demo"
DURATION_S = 40
RETRY_S = 30
PROMTOOL = shutil.which("promtool")


def read(url: str, token: str = "") -> tuple[int, bytes, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read(), response.headers.get("Content-Type", "")


def read_retrying(url: str, token: str = "") -> tuple[int, bytes, str]:
    """`read`, retried while the URL does not answer (the HA act's agent is down briefly)."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            return read(url, token)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for_state(process: subprocess.Popen[bytes], state_file: Path, log: Path) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if state_file.exists() and state_file.read_text().strip():
            return dict(json.loads(state_file.read_text()))
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no state file after 90 s:\n{log.read_text()[-3000:]}")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) is not installed")
def test_demo_publishes_every_endpoint_in_its_state_file_and_stops_by_itself(
    tmp_path: Path,
) -> None:
    state_file, log = tmp_path / "demo.json", tmp_path / "demo.log"
    command = [str(DEMO), "--duration", str(DURATION_S), "--state-file", str(state_file)]
    command += ["--nodes", "2", "--vms-per-node", "2", "--refresh", "60"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        state = wait_for_state(process, state_file, log)
        assert {"dashboard", "api", "token", "metrics"} <= set(state)
        assert state_file.stat().st_mode & 0o777 == 0o600  # it holds the operator token

        status, body, _ = read(state["api"] + "/nodes", state["token"])
        nodes = sorted(n["id"] for n in json.loads(body)["nodes"])
        assert status == 200 and nodes == ["c1-n1", "c1-n2", "c2-n1", "c2-n2"]

        # coordinator, two cluster managers, two agents each
        assert len(state["metrics"]) == 1 + 2 + 4
        assert len(set(state["metrics"])) == len(state["metrics"])
        for url in state["metrics"]:
            status, text, content_type = read_retrying(url)
            assert status == 200 and content_type.startswith("text/plain")
            check = subprocess.run(
                [str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, timeout=30
            )
            assert (check.returncode, check.stdout + check.stderr) == (0, b""), url
        agent_series = [read_retrying(u)[1] for u in state["metrics"]]
        assert sum(b"vmgrid_domain_info{" in s for s in agent_series) == 4

        status, page, content_type = read(state["dashboard"])
        assert status == 200 and content_type.startswith("text/html") and b"<html" in page.lower()
        status, body, _ = read(state["api"] + "/history?node=c2-n1", state["token"])
        assert status == 200 and json.loads(body)["times_unix_ms"]  # through c2's GetHistory
        cluster_api = state["cluster_dashboard"] + "api/v1"
        status, body, _ = read(cluster_api + "/timeline", state["token"])
        assert status == 200 and "plans" in json.loads(body)

        jobs = wait_for_running_job(state)
        assert [j["name"] for j in jobs] == ["demo-mpi"] and len(jobs[0]["members"]) == 2

        assert process.wait(timeout=DURATION_S + 60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "vmgrid demo stopped" in text
    for dashboard in (state["dashboard"], state["cluster_dashboard"]):  # the login links
        assert f"{dashboard}#token={state['token']}" in text
    assert "runs once, on" in text and "the group survived the node failure" in text, text[-3000:]
    # two nodes only: the restarted member cannot keep the group's spread rule, and says so
    assert "-spread reported impossible (no node with room keeps it" in text, text[-3000:]
    assert "VIOLATED" not in text


def wait_for_running_job(state: dict) -> list[dict]:  # type: ignore[type-arg]
    """GET <api>/jobs until the HA act's group is running (it is submitted after the state)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, body, _ = read(state["api"] + "/jobs", state["token"])
        jobs = list(json.loads(body)["jobs"])
        if jobs and jobs[0]["state"] in ("running", "failed"):
            assert jobs[0]["state"] == "running", jobs
            _, one, _ = read(state["api"] + "/jobs/" + jobs[0]["id"], state["token"])
            assert json.loads(one)["id"] == jobs[0]["id"]
            return jobs
        time.sleep(0.5)
    raise AssertionError("the demo's group did not reach running within 60 s")


def _agent_children(parent: int) -> set[int]:
    """Pids of the node agents `parent` started (from /proc: parent pid and command line)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"vmgrid.agents.node" in cmdline:
            found.add(int(stat.parent.name))
    return found


def test_a_signal_during_start_up_stops_the_agents_already_started(tmp_path: Path) -> None:
    command = [str(DEMO), "--duration", "60", "--nodes", "2", "--vms-per-node", "1"]
    with (tmp_path / "demo.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        # A bound, not a speed target: on a loaded 2-core machine the demo's start-up (imports,
        # certificates, the coordinator and the manager) before its first agent can pass 30 s.
        deadline = time.monotonic() + 120
        while not (agents := _agent_children(process.pid)) and time.monotonic() < deadline:
            if process.poll() is not None:
                log = (tmp_path / "demo.log").read_text(errors="replace")
                pytest.fail(f"the demo exited ({process.returncode}) before any agent:\n{log}")
            time.sleep(0.05)
        assert agents, "the demo started no agent within 120 s"
        process.terminate()  # SIGTERM while it is still starting
        assert process.wait(timeout=60) in (0, 1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.5)
    alive = [pid for pid in agents if Path(f"/proc/{pid}").exists()]
    assert not alive, f"agents left running: {alive}"
