"""Synthetic load for test-driver nodes, whose libvirt figures never move.

A load source gives each VM a CPU profile (percent of the VM's vCPUs) and network profiles
(Mbit/s received and sent) as functions of the time since the agent started. Profiles are
constant, sine, step, seeded random walk, or a trace in PlanetLab's format (one integer
0-99 per line, one line per 300 s). Every figure produced from a load source is reported
as ``simulated``.

Specs come from the agent's TOML config, e.g.::

    [load]
    default = { cpu = { kind = "sine", mean = 30, amplitude = 20, period_s = 600 } }
    [load.vms.vm-003]
    cpu = { kind = "trace", path = "traces/host-7", step_s = 300 }
    net_rx = { kind = "constant", value = 40 }
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vmgrid.agents.errors import ConfigError

BYTES_PER_SECOND_PER_MBPS = 125_000


class Profile(Protocol):
    """A value as a function of seconds since the load started."""

    def value_at(self, elapsed_s: float) -> float: ...


@dataclass(frozen=True)
class Constant:
    value: float

    def value_at(self, elapsed_s: float) -> float:
        return self.value


@dataclass(frozen=True)
class Sine:
    mean: float
    amplitude: float
    period_s: float
    phase_s: float = 0.0

    def value_at(self, elapsed_s: float) -> float:
        angle = 2 * math.pi * (elapsed_s + self.phase_s) / self.period_s
        return self.mean + self.amplitude * math.sin(angle)


@dataclass(frozen=True)
class Step:
    before: float
    after: float
    at_s: float

    def value_at(self, elapsed_s: float) -> float:
        return self.before if elapsed_s < self.at_s else self.after


@dataclass
class RandomWalk:
    """Bounded random walk, one move per ``interval_s``, replayable from its seed.

    It keeps the last position so that reading it every period costs one step, not a
    replay from the start.
    """

    start: float
    step: float
    interval_s: float
    seed: int
    minimum: float = 0.0
    maximum: float = 100.0
    _steps_done: int = field(default=0, init=False, repr=False)
    _value: float = field(default=0.0, init=False, repr=False)
    _rng: random.Random | None = field(default=None, init=False, repr=False)

    def value_at(self, elapsed_s: float) -> float:
        target = int(max(elapsed_s, 0.0) // self.interval_s)
        if self._rng is None or target < self._steps_done:
            self._rng = random.Random(self.seed)
            self._steps_done, self._value = 0, min(max(self.start, self.minimum), self.maximum)
        while self._steps_done < target:
            moved = self._value + self._rng.uniform(-self.step, self.step)
            self._value = min(max(moved, self.minimum), self.maximum)
            self._steps_done += 1
        return self._value


@dataclass(frozen=True)
class Trace:
    """A recorded series, one value per ``step_s``, wrapped around when it runs out."""

    values: tuple[float, ...]
    step_s: float = 300.0
    offset_steps: int = 0

    def value_at(self, elapsed_s: float) -> float:
        index = int(max(elapsed_s, 0.0) // self.step_s) + self.offset_steps
        return self.values[index % len(self.values)]


def read_trace(path: Path) -> tuple[float, ...]:
    """Read a PlanetLab-style trace: one integer CPU percentage (0-99) per line."""
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise ConfigError(f"load trace {str(path)!r} cannot be read: {exc.strerror}") from exc
    values = []
    for number, text in enumerate(lines, start=1):
        if not text.isdigit() or int(text) > 100:
            raise ConfigError(
                f"load trace {str(path)!r} line {number}: {text!r} is not an integer 0-100"
            )
        values.append(float(text))
    if not values:
        raise ConfigError(f"load trace {str(path)!r} is empty; expected one integer per line")
    return tuple(values)


@dataclass(frozen=True)
class VmLoad:
    """Profiles of one VM: CPU in percent of its vCPUs, network in Mbit/s."""

    cpu: Profile
    net_rx: Profile
    net_tx: Profile


@dataclass(frozen=True)
class VmFigures:
    cpu_millicores: int
    net_rx_bytes_per_second: int
    net_tx_bytes_per_second: int


IDLE = VmLoad(Constant(0.0), Constant(0.0), Constant(0.0))


class LoadSource:
    """Gives simulated usage to each VM by name, from per-VM specs or the default one."""

    def __init__(
        self,
        default: Mapping[str, Any] | None = None,
        per_vm: Mapping[str, Mapping[str, Any]] | None = None,
        seed: int = 0,
        base_dir: Path | None = None,
    ) -> None:
        self._default = dict(default or {})
        self._seed = seed
        self._base_dir = base_dir or Path.cwd()
        self._loads: dict[str, VmLoad] = {
            name: self._build(spec, f"load.vms.{name}", name)
            for name, spec in (per_vm or {}).items()
        }
        self._build(self._default, "load.default", "")  # validate now, not at first use

    def figures(self, vm_name: str, vcpus: int, elapsed_s: float) -> VmFigures:
        load = self._loads.get(vm_name)
        if load is None:
            load = self._build(self._default, "load.default", vm_name)
            self._loads[vm_name] = load
        cpu_percent = min(max(load.cpu.value_at(elapsed_s), 0.0), 100.0)
        return VmFigures(
            cpu_millicores=int(cpu_percent * vcpus * 10),
            net_rx_bytes_per_second=_mbps_to_bytes(load.net_rx.value_at(elapsed_s)),
            net_tx_bytes_per_second=_mbps_to_bytes(load.net_tx.value_at(elapsed_s)),
        )

    def _build(self, spec: Mapping[str, Any], where: str, vm_name: str) -> VmLoad:
        unknown = set(spec) - {"cpu", "net_rx", "net_tx"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r}; accepted: cpu, net_rx, net_tx"
            )
        # Each VM gets its own random-walk seed derived from the global one and its name,
        # so that VMs sharing the default spec do not move in lockstep.
        vm_seed = self._seed ^ zlib.crc32(vm_name.encode())
        return VmLoad(
            *(
                parse_profile(spec[key], f"{where}.{key}", vm_seed + i, self._base_dir)
                if key in spec
                else Constant(0.0)
                for i, key in enumerate(("cpu", "net_rx", "net_tx"))
            )
        )


def _mbps_to_bytes(mbps: float) -> int:
    return int(max(mbps, 0.0) * BYTES_PER_SECOND_PER_MBPS)


_KINDS = "constant, sine, step, random_walk, trace"


def parse_profile(spec: Any, where: str, seed: int, base_dir: Path) -> Profile:
    """Build a profile from its TOML table; errors name the key and the accepted values."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Constant(float(spec))
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: {spec!r} is not a number or a table with a 'kind'")
    kind = spec.get("kind")
    get = _Getter(spec, where)
    if kind == "constant":
        return Constant(get.number("value"))
    if kind == "sine":
        return Sine(
            get.number("mean"),
            get.number("amplitude"),
            get.positive("period_s"),
            get.number("phase_s", 0.0),
        )
    if kind == "step":
        return Step(get.number("before"), get.number("after"), get.number("at_s"))
    if kind == "random_walk":
        return RandomWalk(
            start=get.number("start"),
            step=get.number("step"),
            interval_s=get.positive("interval_s", 60.0),
            seed=int(get.number("seed", float(seed))),
            minimum=get.number("min", 0.0),
            maximum=get.number("max", 100.0),
        )
    if kind == "trace":
        path = Path(str(spec.get("path", "")))
        if not str(spec.get("path", "")):
            raise ConfigError(f"{where}.path is missing; expected a trace file path")
        values = read_trace(path if path.is_absolute() else base_dir / path)
        return Trace(values, get.positive("step_s", 300.0), int(get.number("offset_steps", 0.0)))
    raise ConfigError(f"{where}.kind: {kind!r} is not a load profile; accepted: {_KINDS}")


class _Getter:
    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        self._spec, self._where = spec, where

    def number(self, key: str, default: float | None = None) -> float:
        value = self._spec.get(key, default)
        if value is None:
            raise ConfigError(f"{self._where}.{key} is missing; expected a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._where}.{key}: {value!r} is not a number")
        return float(value)

    def positive(self, key: str, default: float | None = None) -> float:
        value = self.number(key, default)
        if value <= 0:
            raise ConfigError(f"{self._where}.{key}: {value!r} must be greater than 0")
        return value
