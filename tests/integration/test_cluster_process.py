"""`vmgrid-cluster` as a process runs the whole runtime: journal file, decision loop, metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from vmgrid.bench.ports import free_port

BIN = Path(sys.executable).parent


def test_vmgrid_cluster_runs_the_runtime_with_a_journal_and_stops_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    metrics = f"127.0.0.1:{free_port()}"
    config = tmp_path / "cluster.toml"
    config.write_text('listen = "127.0.0.1:0"\n[control]\nautomation = "partial"\nperiod_s = 1\n')
    process = subprocess.Popen(
        [
            str(BIN / "vmgrid-cluster"),
            "--insecure",
            "--config",
            str(config),
            "--ready-file",
            str(ready),
            "--state-dir",
            str(tmp_path / "state"),
            "--metrics-listen",
            metrics,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the manager did not start"
        assert (tmp_path / "state" / "journal.sqlite").is_file()
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert "vmgrid_cluster_pending_approvals 0.0" in text  # the runtime is attached
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "automation partial" in output


def test_vmgrid_cluster_refuses_a_bad_control_value_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    config.write_text("[control]\ndrain_fallback = 'migrate'\n")
    done = subprocess.run(
        [str(BIN / "vmgrid-cluster"), "--insecure", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "vmgrid-cluster: control.drain_fallback: 'migrate' is not one of suspend, shutdown, none"
    )


def test_vmgrid_cluster_profile_writes_its_event_loop_profile_on_exit(tmp_path: Path) -> None:
    import pstats

    ready, profile = tmp_path / "ready", tmp_path / "manager.prof"
    process = subprocess.Popen(
        [str(BIN / "vmgrid-cluster"), "--insecure", "--listen", "127.0.0.1:0"]
        + ["--ready-file", str(ready), "--state-dir", str(tmp_path), "--profile", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the manager did not start"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    functions = {name for _, _, name in pstats.Stats(str(profile)).stats}  # type: ignore[attr-defined]
    assert "_serve" in functions
