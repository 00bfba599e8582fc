"""`vmgrid-cluster`'s [control] table and flags: merged, validated, one clear line per error."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.cluster.decide.control import AutomationLevel
from vmgrid.agents.cluster.decide.maintenance import DrainFallback
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.main import build_parser, build_settings, main
from vmgrid.agents.cluster.service.runtime import RuntimeOptions
from vmgrid.agents.errors import ConfigError


def settings(tmp_path: Path, toml: str, *flags: str) -> tuple[ClusterConfig, RuntimeOptions]:
    path = tmp_path / "cluster.toml"
    path.write_text(toml)
    args = build_parser().parse_args(
        ["--insecure", "--config", str(path), "--state-dir", str(tmp_path / "state"), *flags]
    )
    return build_settings(args)


def test_control_table_and_flags_build_the_runtime_with_flags_winning(tmp_path: Path) -> None:
    toml = """
listen = "127.0.0.1:0"
[control]
automation = "partial"
hold_s = 30
drain_fallback = "suspend"
max_actions_per_node = 3
migration_bandwidth_mbit = 500
"""
    config, options = settings(tmp_path, toml, "--automation", "automatic", "--cooldown-s", "7")
    assert config.listen == "127.0.0.1:0"
    assert options.control.automation is AutomationLevel.AUTOMATIC
    assert options.control.hold_s == 30.0
    assert options.control.cooldown_s == 7.0
    assert options.control.drain_fallback is DrainFallback.SUSPEND
    assert options.limits.max_actions_per_node == 3
    assert options.driver.migration_bandwidth_bps == 500_000_000
    assert options.driver.migration_auto_converge is False
    assert options.journal_path == str(tmp_path / "state" / "journal.sqlite")
    assert (tmp_path / "state").is_dir()


def test_auto_converge_is_asked_for_in_the_table_or_by_flag(tmp_path: Path) -> None:
    _, table = settings(tmp_path, "[control]\nmigration_auto_converge = true\n")
    assert table.driver.migration_auto_converge is True
    _, flag = settings(tmp_path, "", "--migration-auto-converge")
    assert flag.driver.migration_auto_converge is True


def test_explicit_journal_path_and_memory_journal(tmp_path: Path) -> None:
    journal = tmp_path / "j" / "plans.db"
    _, options = settings(tmp_path, "", "--journal", str(journal))
    assert options.journal_path == str(journal)
    _, memory = settings(tmp_path, "", "--journal", ":memory:")
    assert memory.journal_path == ":memory:"


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        ("[control]\noverload_threshold = 0.9", (), "moved to [policy] cpu_high"),
        ("[policy]\ncpu_high = 1.5", (), "policy.cpu_high: 1.5 must be in"),
        ("[policy]\ncpu_low = 0.9", (), "policy.cpu_low: 0.9 must be below cpu_high"),
        ("[policy]\naggressiveness = 'wild'", (), "'wild' is not one of conservative"),
        ("", ("--migrations-per-hour", "-1"), "policy.migrations_per_hour: -1 must be >= 0"),
        ("[control]\nautomation = 'sometimes'", (), "'sometimes' is not one of manual"),
        ("[control]\nhold = 3", (), "unknown key 'hold'"),
        ("[control]\nhold_s = 'long'", (), "control.hold_s = 'long'"),
        ("[control]\npower_saving = true", (), "needs control.power_off_command"),
        ("", ("--coordinator", "nowhere"), "control.coordinator: 'nowhere'"),
        ("", ("--max-parallel", "0"), "max_parallel must be an integer >= 1, got 0"),
        ("", ("--power-off-command", "ipmi {host}"), "control.power_off_command"),
        ("", ("--migration-bandwidth-mbit", "0"), "control.migration_bandwidth_mbit: 0"),
    ],
)
def test_bad_values_are_named_in_one_line(
    tmp_path: Path, toml: str, flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, toml, *flags)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_main_exits_2_with_one_line_on_a_bad_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--insecure", "--journal", ":memory:", "--hold-s", "-1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "vmgrid-cluster: control.hold_s: -1.0 must be >= 0"


def test_max_downtime_is_set_in_the_table_or_by_flag_and_checked(tmp_path: Path) -> None:
    _, default = settings(tmp_path, "")
    assert default.driver.migration_max_downtime_ms == 0
    _, table = settings(tmp_path, "[control]\nmigration_max_downtime_ms = 100\n")
    assert table.driver.migration_max_downtime_ms == 100
    _, flag = settings(tmp_path, "", "--migration-max-downtime-ms", "50")
    assert flag.driver.migration_max_downtime_ms == 50
    for bad in ("-1", "60001"):
        with pytest.raises(ConfigError, match=f"control.migration_max_downtime_ms: {bad}"):
            settings(tmp_path, f"[control]\nmigration_max_downtime_ms = {bad}\n")
