"""`vmgrid-cluster`'s one config tree: an empty file gives the tree's own defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.act.executor import ExecutionLimits
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.service import settings
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.main import build_parser
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions


def load(tmp_path: Path, toml: str, *flags: str) -> settings.ClusterSettings:
    path = tmp_path / "cluster.toml"
    path.write_text(toml)
    base = ["--insecure", "--config", str(path), "--journal", ":memory:"]
    return settings.load(build_parser().parse_args([*base, *flags]))


def test_a_file_without_keys_gives_every_field_its_dataclass_default(tmp_path: Path) -> None:
    tree = load(tmp_path, "")
    assert tree.server == ClusterConfig(insecure=True)
    assert tree.runtime.control == ControlConfig()
    assert tree.runtime.driver == DriverOptions()
    assert tree.runtime.limits == ExecutionLimits()
    assert tree.runtime.fault_tolerance is None
    defaults = RuntimeOptions()
    for name in ("decisions", "resume_grace_s", "coordinator", "summary_period_s"):
        assert getattr(tree.runtime, name) == getattr(defaults, name), name


def test_jobs_without_keys_give_the_fault_tolerance_defaults(tmp_path: Path) -> None:
    found = load(tmp_path, "[fault_tolerance]\njobs = true\n").runtime.fault_tolerance
    assert found is not None
    defaults = FaultToleranceOptions()
    assert found.ha == HaConfig()
    assert found.checkpoint_period_s == defaults.checkpoint_period_s
    assert found.restart_on_failure == defaults.restart_on_failure
    assert found.default_checkpoint_policy == defaults.default_checkpoint_policy
    same = dataclasses.replace(found.submission, db_path=defaults.submission.db_path)
    assert same == defaults.submission


def test_wake_powered_off_is_on_by_default_and_needs_a_power_on_command(tmp_path: Path) -> None:
    assert load(tmp_path, "").runtime.control.wake_powered_off
    without = ClusterRuntime(ClusterConfig(insecure=True), load(tmp_path, "").runtime)
    assert not without.options.control.wake_powered_off
    on = load(tmp_path, "[control]\npower_on_command = 'wake {node}'\n").runtime
    assert ClusterRuntime(ClusterConfig(insecure=True), on).options.control.wake_powered_off
    off = load(tmp_path, "", "--power-on-command", "wake {node}", "--no-wake-powered-off")
    assert not ClusterRuntime(
        ClusterConfig(insecure=True), off.runtime
    ).options.control.wake_powered_off


def test_one_pass_reads_the_server_keys_from_a_cluster_table(tmp_path: Path) -> None:
    toml = '[cluster]\ncluster_id = "rack-a"\n[control]\nhold_s = 30\n'
    tree = load(tmp_path, toml, "--history-window", "7")
    assert tree.server.cluster_id == "rack-a"
    assert tree.server.history_window == 7
    assert tree.runtime.control.hold_s == 30.0
