"""The ``[control]`` table of ``vmgrid-cluster``: decision loop, execution, journal, uplink.

Everything beside the gRPC server (ClusterConfig) that a running manager needs: the decision
loop's thresholds and automation level, maintenance and power settings, the executor's
concurrency limits, where the plan journal lives and which coordinator to report to. Keys of
the TOML table are the long flag names with underscores; a flag overrides its key. Every bad
value becomes one ConfigError line naming the key, the value and what is accepted.
"""

from __future__ import annotations

import argparse
import enum
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.act.executor import ExecutionLimits
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig, PolicyKind
from vmgrid.agents.cluster.decide.maintenance import DrainFallback
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import RuntimeOptions
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.tls import TlsFiles, channel_credentials

MEMORY_JOURNAL = ":memory:"
JOURNAL_FILE = "journal.sqlite"

_CONTROL_DEFAULTS = ControlConfig()
_DRIVER_DEFAULTS = DriverOptions()
MAX_DOWNTIME_MS = 60_000
_LIMIT_DEFAULTS = ExecutionLimits()
_RUNTIME_DEFAULTS = RuntimeOptions()

# key -> (default, help). The default's type is the accepted TOML type (an int is accepted for
# a float); enums are given by value.
KEYS: dict[str, tuple[object, str]] = {
    "automation": (_CONTROL_DEFAULTS.automation, "manual, partial or automatic"),
    "period_s": (_CONTROL_DEFAULTS.period_s, "seconds between decision cycles"),
    "hold_s": (_CONTROL_DEFAULTS.hold_s, "seconds a node stays beyond a threshold first"),
    "pressure_trigger": (
        _CONTROL_DEFAULTS.pressure_trigger,
        "CPU pressure (PSI some avg10, percent) that also counts as overload; 0: off",
    ),
    "cooldown_s": (_CONTROL_DEFAULTS.cooldown_s, "seconds without rebalancing after a plan"),
    "min_gain_nodes": (_CONTROL_DEFAULTS.min_gain_nodes, "nodes a consolidation must free"),
    "solver_time_limit_s": (_CONTROL_DEFAULTS.solver_time_limit_s, "CP-SAT limit per decision"),
    "policy": (_CONTROL_DEFAULTS.policy, "vmgrid (DecisionPolicy) or solver, for rebalancing"),
    "drain_fallback": (_CONTROL_DEFAULTS.drain_fallback, "suspend, shutdown or none"),
    "power_saving": (_CONTROL_DEFAULTS.power_saving, "power freed nodes off"),
    "power_off_command": (_DRIVER_DEFAULTS.power_off_command, "command, {node} = node id"),
    "power_on_command": (_DRIVER_DEFAULTS.power_on_command, "command, {node} = node id"),
    "power_timeout_s": (_DRIVER_DEFAULTS.power_timeout_s, "longest wait for a power command"),
    "boot_timeout_s": (_DRIVER_DEFAULTS.boot_timeout_s, "wait for a powered-on node's agent"),
    "wake_powered_off": (
        _CONTROL_DEFAULTS.wake_powered_off,
        "power on nodes the manager powered off when capacity is short or on undrain "
        "(needs power_on_command)",
    ),
    "decision_process": (
        _CONTROL_DEFAULTS.decision_process,
        "decide in a forked child process (false: in a thread)",
    ),
    "migration_bandwidth_mbit": (
        _DRIVER_DEFAULTS.migration_bandwidth_bps // 1_000_000,
        "bandwidth cap per live migration, Mbit/s",
    ),
    "migration_auto_converge": (
        _DRIVER_DEFAULTS.migration_auto_converge,
        "ask libvirt for auto-converge (throttle a guest that dirties faster than it copies)",
    ),
    "migration_max_downtime_ms": (
        _DRIVER_DEFAULTS.migration_max_downtime_ms,
        "QEMU's downtime limit for live migrations, ms (0: QEMU's default, 300)",
    ),
    "command_timeout_s": (_DRIVER_DEFAULTS.command_timeout_s, "longest wait for one command"),
    "max_actions_per_node": (_LIMIT_DEFAULTS.max_actions_per_node, "concurrent actions/node"),
    "max_migrations_per_link": (_LIMIT_DEFAULTS.max_migrations_per_link, "per node pair"),
    "max_parallel": (_LIMIT_DEFAULTS.max_parallel, "concurrent actions in the cluster"),
    "state_dir": ("", "directory of the journal (default $XDG_STATE_HOME/vmgrid/CLUSTER_ID)"),
    "journal": ("", f"plan journal SQLite file (default STATE_DIR/{JOURNAL_FILE}; :memory:)"),
    "decisions": (_RUNTIME_DEFAULTS.decisions, "run the decision loop"),
    "resume_grace_s": (_RUNTIME_DEFAULTS.resume_grace_s, "wait for nodes before resuming"),
    "coordinator": (
        _RUNTIME_DEFAULTS.coordinator,
        "host:port of the grid coordinator; replicated: every replica's, separated by commas",
    ),
    "summary_period_s": (_RUNTIME_DEFAULTS.summary_period_s, "seconds between summaries"),
}


MOVED: dict[str, str] = {
    "overload_threshold": "[policy] cpu_high and memory_high",
    "underload_threshold": "[policy] cpu_low and memory_low",
    "target_utilisation": "[policy] cpu_high and memory_high",
    "max_migrations_per_cycle": "[policy] migrations_per_cycle",
}
"""[control] keys that became the operator policy's (the error says where they went)."""


def control_table(document: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The ``[control]`` table of a read config file (empty when it has none), checked."""
    table = document.get("control", {})
    if not isinstance(table, dict):
        raise ConfigError(f"control: must be a table ([control]) in {path!r}, got {table!r}")
    return check_table(table, repr(path))


def check_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate the keys and TOML types of a ``[control]`` table."""
    for key, value in table.items():
        if key in MOVED:
            raise ConfigError(f"control.{key} in {where}: moved to {MOVED[key]}")
        if key not in KEYS:
            raise ConfigError(
                f"control: unknown key {key!r} in {where}; accepted: {', '.join(KEYS)}"
            )
        default = KEYS[key][0]
        if isinstance(default, enum.Enum):
            expected: type = str
        else:
            expected = type(default)
        ok = type(value) is expected or (expected is float and type(value) is int)
        if not ok:
            raise ConfigError(
                f"control.{key} = {value!r} in {where}: must be a {expected.__name__}"
            )
    return dict(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the ``[control]`` table (each overrides its key)."""
    group = parser.add_argument_group("control loop, execution and journal ([control] table)")
    for key, (default, help_text) in KEYS.items():
        flag = "--" + key.replace("_", "-")
        shown = default.value if isinstance(default, enum.Enum) else default
        text = f"{help_text} (default {shown!r})" if shown != "" else help_text
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        if isinstance(default, enum.Enum):
            choices = [e.value for e in type(default)]
            group.add_argument(flag, choices=choices, default=None, help=text)
            continue
        kind: Callable[[str], object] = type(default)
        group.add_argument(flag, type=kind, default=None, metavar=key.upper(), help=text)


def merge(table: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The TOML table overridden by the flags that were given."""
    values = dict(table)
    for key in KEYS:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    return values


def _enum(kind: type[enum.Enum], key: str, value: object) -> Any:
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(e.value for e in kind)
        raise ConfigError(f"control.{key}: {value!r} is not one of {accepted}") from None


def journal_path(values: Mapping[str, Any], cluster_id: str) -> str:
    """The journal file: ``journal`` if set, else STATE_DIR/journal.sqlite (dir created)."""
    journal = str(values.get("journal", ""))
    if journal == MEMORY_JOURNAL:
        return journal
    if journal:
        parent = Path(journal).parent
    else:
        state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        parent = Path(str(values.get("state_dir") or Path(state_home) / "vmgrid" / cluster_id))
        journal = str(parent / JOURNAL_FILE)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"control.state_dir: cannot create {str(parent)!r} ({exc.strerror})"
        ) from None
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"control.journal: directory {str(parent)!r} is not writable")
    return journal


def runtime_options(values: Mapping[str, Any], cluster: ClusterConfig) -> RuntimeOptions:
    """RuntimeOptions from a merged ``[control]`` table; ConfigError names a bad value."""
    v = {k: values.get(k, default) for k, (default, _) in KEYS.items()}
    try:
        control = ControlConfig(
            period_s=float(v["period_s"]),
            hold_s=float(v["hold_s"]),
            pressure_trigger=float(v["pressure_trigger"]),
            cooldown_s=float(v["cooldown_s"]),
            min_gain_nodes=int(v["min_gain_nodes"]),
            automation=_enum(AutomationLevel, "automation", _value(v["automation"])),
            power_saving=bool(v["power_saving"]),
            drain_fallback=_enum(DrainFallback, "drain_fallback", _value(v["drain_fallback"])),
            solver_time_limit_s=float(v["solver_time_limit_s"]),
            policy=_enum(PolicyKind, "policy", _value(v["policy"])),
            decision_process=bool(v["decision_process"]),
            wake_powered_off=bool(v["wake_powered_off"]),
        )
        limits = ExecutionLimits(
            max_actions_per_node=int(v["max_actions_per_node"]),
            max_migrations_per_link=int(v["max_migrations_per_link"]),
            max_parallel=int(v["max_parallel"]),
        )
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith("control.") else f"control: {message}"
        ) from None
    _positive(
        v, "migration_bandwidth_mbit", "power_timeout_s", "boot_timeout_s", "command_timeout_s"
    )
    _positive(v, "summary_period_s")
    if not 0 <= int(v["migration_max_downtime_ms"]) <= MAX_DOWNTIME_MS:
        raise ConfigError(
            f"control.migration_max_downtime_ms: {v['migration_max_downtime_ms']!r} must be 0 "
            f"(QEMU's default) to {MAX_DOWNTIME_MS}"
        )
    if float(v["resume_grace_s"]) < 0:
        raise ConfigError(f"control.resume_grace_s: {v['resume_grace_s']!r} must be >= 0")
    for key in ("power_off_command", "power_on_command"):
        _check_template(key, str(v[key]))
    if control.power_saving and not v["power_off_command"]:
        raise ConfigError(
            "control.power_saving: true needs control.power_off_command "
            "(e.g. 'ipmitool -H {node}-bmc chassis power soft')"
        )
    driver = DriverOptions(
        migration_bandwidth_bps=int(v["migration_bandwidth_mbit"]) * 1_000_000,
        migration_auto_converge=bool(v["migration_auto_converge"]),
        migration_max_downtime_ms=int(v["migration_max_downtime_ms"]),
        command_timeout_s=float(v["command_timeout_s"]),
        power_off_command=str(v["power_off_command"]),
        power_on_command=str(v["power_on_command"]),
        power_timeout_s=float(v["power_timeout_s"]),
        boot_timeout_s=float(v["boot_timeout_s"]),
    )
    coordinator = ",".join(a.strip() for a in str(v["coordinator"]).split(",") if a.strip())
    for one in coordinator.split(",") if coordinator else ():
        host, sep, port = one.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ConfigError(f"control.coordinator: {one!r} is not host:port")
    credentials = None
    if coordinator and not cluster.insecure:
        files = TlsFiles(cluster.tls_ca_file, cluster.tls_cert_file, cluster.tls_key_file)
        credentials = channel_credentials(files)
    return RuntimeOptions(
        control=control,
        driver=driver,
        limits=limits,
        journal_path=journal_path(v, cluster.cluster_id),
        decisions=bool(v["decisions"]),
        resume_grace_s=float(v["resume_grace_s"]),
        coordinator=coordinator,
        coordinator_credentials=credentials,
        summary_period_s=float(v["summary_period_s"]),
    )


def _value(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def _positive(values: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if not float(values[key]) > 0:
            raise ConfigError(f"control.{key}: {values[key]!r} must be > 0")


def _check_template(key: str, template: str) -> None:
    """A power command must name the node through ``{node}`` and nothing else."""
    if not template:
        return
    try:
        template.format(node="n1")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"control.{key}: {template!r} is not a valid template ({exc}); "
            "use {node} for the node id"
        ) from None
