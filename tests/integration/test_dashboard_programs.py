"""`vmgrid-coordinator` and `vmgrid-cluster` serve the dashboard with --web-listen (processes)."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
URL_LINE = re.compile(r"dashboard on (http://\S+/) \(tokens in (\S+)\)")


def start(program: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(BIN / program), *args], stdout=out, stderr=out)


def dashboard_of(process: subprocess.Popen[bytes], log: Path) -> tuple[str, Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = URL_LINE.search(log.read_text())
        if found:
            return found.group(1), Path(found.group(2))
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no dashboard line in the log:\n{log.read_text()}")


def get(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_coordinator_generates_private_tokens_once_and_serves_the_grid_view(
    tmp_path: Path,
) -> None:
    args = ["--insecure", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"]
    args += ["--state-db", str(tmp_path / "grid.sqlite")]
    process = start("vmgrid-coordinator", args, tmp_path / "first.log")
    try:
        url, token_file = dashboard_of(process, tmp_path / "first.log")
        assert token_file == tmp_path / "web-tokens.toml"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        tokens = tomllib.loads(token_file.read_text())
        assert tokens["operator"] not in (tmp_path / "first.log").read_text()
        status, info = get(url + "api/v1/info", tokens["read"])
        assert (status, info["kind"]) == (200, "coordinator")
        status, body = get(url + "api/v1/clusters", tokens["operator"])
        assert (status, body) == (200, {"clusters": []})
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"<html" in page.read().lower()
    finally:
        assert stop(process) == 0
    process = start("vmgrid-coordinator", args, tmp_path / "second.log")
    try:
        url, _ = dashboard_of(process, tmp_path / "second.log")
        assert get(url + "api/v1/nodes", tokens["operator"])[0] == 200  # the same tokens
    finally:
        assert stop(process) == 0


def test_cluster_serves_its_dashboard_with_the_tokens_of_the_file(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.toml"
    token_file.write_text('read = "read-token-0123456789"\noperator = "operator-token-012345"\n')
    args = ["--insecure", "--listen", "127.0.0.1:0", "--journal", ":memory:", "--no-decisions"]
    args += ["--web-listen", "127.0.0.1:0", "--web-token-file", str(token_file)]
    process = start("vmgrid-cluster", args, tmp_path / "cluster.log")
    try:
        url, named = dashboard_of(process, tmp_path / "cluster.log")
        assert named == token_file
        status, body = get(url + "api/v1/nodes", "read-token-0123456789")
        assert (status, body) == (200, {"nodes": []})
        assert get(url + "api/v1/info", "")[1]["kind"] == "cluster"
    finally:
        assert stop(process) == 0


@pytest.mark.parametrize(
    ("program", "flags", "named"),
    [
        ("vmgrid-coordinator", ["--web-listen", "nowhere"], "web_listen"),
        ("vmgrid-cluster", ["--web-listen", "127.0.0.1:99999"], "web_listen"),
        ("vmgrid-cluster", ["--web-token-file", "MISSING", "--web-listen", "127.0.0.1:0"], ""),
    ],
)
def test_a_bad_dashboard_setting_stops_the_program_with_one_line(
    tmp_path: Path, program: str, flags: list[str], named: str
) -> None:
    extra = ["--state-db", str(tmp_path / "g.sqlite")] if program == "vmgrid-coordinator" else []
    if program == "vmgrid-cluster":
        extra = ["--journal", ":memory:", "--no-decisions"]
    done = subprocess.run(
        [str(BIN / program), "--insecure", "--listen", "127.0.0.1:0", *extra, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{program}: {named or 'web_token_file'}")
