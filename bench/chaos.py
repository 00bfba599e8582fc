"""`vmgrid-bench chaos`: a seeded random run of operator actions, load and failures on a real
grid, with the invariants checked after every step and sampled while plans run.

The grid (`chaos_grid`) is a coordinator, c1 in this process and c2 as a `vmgrid-cluster`
process, with test-driver agent processes. Steps (`chaos_steps`) are drawn from the seed; the
seed is printed first, and the same seed draws the same steps (timing, and so the product's own
choices, still vary between runs). Checks (`chaos_check`): no VM lost, none running twice,
every rule of c1's store holds unless the manager called it impossible. Output, last line:
``{"steps", "seed", "violations", "lost_vms", "duplicated_vms", "impossible_rules_reported"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.events import ClusterEvent
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.node.testnode import SimVm
from vmgrid.bench.chaos_check import (
    KNOWN_CONCURRENT,
    KNOWN_GRID_MOVE_IN,
    KNOWN_HA_RESTART,
    KNOWN_STALE_MEMBER,
    Finding,
    Ledger,
    broken_rules,
    concurrent_moves,
    duplicated,
    missing,
)
from vmgrid.bench.chaos_grid import ChaosGrid, GridShape, Placement, running_grid
from vmgrid.bench.chaos_steps import STEPS

SAMPLE_PERIOD_S = 0.25
SETTLE_S = 20.0
"""Longest wait, after a step, for an expected VM to show again (HA restarts, grid moves)."""
DUPLICATE_HOLD_S = 2.5
"""A VM counts as running twice when two nodes' reports say so for this long (2.5 report
periods): the manager's mirror of a restarted agent may show its old VMs until it reports."""
CONCURRENT_WINDOW_S = 10.0
"""How far back a broken rule's moves are looked for in the journal."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=_positive, default=300, help="steps to run (default 300)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    parser.add_argument("--workdir", default="", help="keep logs here (default: a temp dir)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of steps") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one step")
    return value


@dataclass
class ChaosResult:
    steps: int
    seed: int
    findings: list[Finding]
    impossible_rules_reported: int
    samples: int
    log: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    def summary(self) -> dict[str, int]:
        return {
            "steps": self.steps,
            "seed": self.seed,
            "violations": self.count("rule"),
            "lost_vms": self.count("lost"),
            "duplicated_vms": self.count("duplicated"),
            "impossible_rules_reported": self.impossible_rules_reported,
        }


class ChaosRun:
    """The run's state: the grid, the generator, what it expects to exist, what it found."""

    def __init__(self, grid: ChaosGrid, seed: int, echo: bool) -> None:
        self.grid = grid
        self.seed = seed
        self.rng = random.Random(seed)
        self.echo = echo
        self.step = 0
        self.ledger = Ledger()
        self.expected: dict[str, str] = {}
        self.job_members: set[str] = set()
        self.drained: set[str] = set()
        self.failed = ""
        self.down_with_host: list[SimVm] = []
        self.forgotten: set[str] = set()
        self.stale_members: dict[str, str] = {}
        self._twice_since: dict[str, float] = {}
        self.moved_in: set[str] = set()
        """VMs a grid move brought into c1."""
        """Job members whose HA record named another node than the one that failed."""
        self.last: list[Placement] = []
        self.connected: dict[str, set[str]] = {}
        self.impossible: set[str] = set()
        self.log: list[str] = []
        self._events = grid.runtime.manager.bus.subscribe(_about_rules)

    def rules(self) -> tuple[Rule, ...]:
        return self.grid.runtime.manager.state.rules.rules()

    def expect(self, vm_uuid: str, name: str, job_member: bool = False) -> None:
        self.expected[vm_uuid] = name
        self.forgotten.discard(vm_uuid)
        if job_member:
            self.job_members.add(vm_uuid)

    def forget(self, vm_uuid: str) -> None:
        """A VM that is gone by the run's own doing (its host was killed, no HA for it)."""
        self.expected.pop(vm_uuid, None)
        self.forgotten.add(vm_uuid)

    def say(self, line: str) -> None:
        self.log.append(line)
        with (self.grid.workdir / "chaos.log").open("a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    async def observe(self) -> bool:
        """Sample the agents' reports and check what can be checked at any moment (no VM
        twice, every rule holding); False while c2's manager is away."""
        seen = await self.grid.placements()
        self._read_events()
        if seen is None:
            return False
        self.last, self.connected = seen
        self.ledger.samples += 1
        twice = duplicated(self.last)
        now = time.monotonic()
        self._twice_since = {u: self._twice_since.get(u, now) for u in twice}
        for vm_uuid, nodes in twice.items():
            if now - self._twice_since[vm_uuid] < DUPLICATE_HOLD_S:
                continue
            detail = f"active on {nodes}" + self._stale(vm_uuid)
            if self.ledger.note("duplicated", self.step, vm_uuid, detail):
                self.say(f"  !! step {self.step}: VM {vm_uuid} running twice: {detail}")
        model = to_model(self.grid.runtime.manager.state.snapshot())
        for rule_id, why in broken_rules(self.rules(), model, self.impossible).items():
            why += self._concurrent(rule_id)
            if self.ledger.note("rule", self.step, rule_id, why):
                self.say(f"  !! step {self.step}: rule {rule_id} broken: {why}")
        return True

    async def settle(self) -> None:
        """Until every expected VM shows somewhere; the ones that do not by then are lost."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            gone = missing(self.expected, self.last) if await self.observe() else None
            if gone == {}:
                return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(SAMPLE_PERIOD_S)
        for vm_uuid, name in (gone or {}).items():
            detail = f"{name} not reported anywhere" + self._stale(vm_uuid)
            if self.ledger.note("lost", self.step, vm_uuid, detail):
                self.say(f"  !! step {self.step}: VM {vm_uuid} lost: {detail}")
            self.forget(vm_uuid)  # counted once; later steps need not wait for it

    def _stale(self, vm_uuid: str) -> str:
        why = self.stale_members.get(vm_uuid)
        return f" ({KNOWN_STALE_MEMBER}: {why})" if why else ""

    def _concurrent(self, rule_id: str) -> str:
        rule = next((r for r in self.rules() if r.rule_id == rule_id), None)
        journal = Path(self.grid.runtime.options.journal_path)
        if rule is None or not journal.is_file():
            return ""
        vms = rule.constraint.vms_in_scope()
        plan = concurrent_moves(journal, vms, time.time() - CONCURRENT_WINDOW_S)
        if plan:
            return f" ({KNOWN_CONCURRENT} {plan})"
        ft = self.grid.runtime.fault_tolerance
        restarted = sorted({r.vm_name for r in ft.ha.restarts if r.vm_uuid in vms}) if ft else []
        if restarted:
            return f" ({KNOWN_HA_RESTART} {', '.join(restarted)})"
        arrived = sorted(self.expected.get(vm, vm) for vm in self.moved_in if vm in vms)
        return f" ({KNOWN_GRID_MOVE_IN} {', '.join(arrived)})" if arrived else ""

    async def sample_forever(self) -> None:
        while True:
            await self.observe()
            await asyncio.sleep(SAMPLE_PERIOD_S)

    def _read_events(self) -> None:
        """Rules the manager called impossible are excused until it says they hold again."""
        while (event := self._events.get_nowait()) is not None:
            for rule in self.rules():
                if f"rule {rule.rule_id} impossible" in event.message:
                    self.impossible.add(rule.rule_id)
                elif f"rule {rule.rule_id} holds again" in event.message:
                    self.impossible.discard(rule.rule_id)


def _about_rules(event: ClusterEvent) -> bool:
    """Events in which the manager says a rule cannot be kept (kinds named rule_*)."""
    return event.kind.value.startswith("rule")


async def run_chaos(
    steps: int, seed: int, workdir: Path, shape: GridShape | None = None, echo: bool = True
) -> ChaosResult:
    """Start the grid, run `steps` seeded steps with checks, stop the grid."""
    async with running_grid(workdir, shape or GridShape(), seed) as grid:
        run = ChaosRun(grid, seed, echo)
        await run.observe()
        for p in run.last:
            run.expect(p.uuid, p.name)
        run.say(f"chaos: seed {seed}, {steps} steps, {len(run.expected)} VMs, logs in {workdir}")
        names = list(STEPS)
        weights = [STEPS[n][1] for n in names]
        sampler = asyncio.create_task(run.sample_forever())
        try:
            for run.step in range(1, steps + 1):
                name = run.rng.choices(names, weights)[0]
                outcome = await STEPS[name][0](run)
                run.say(f"step {run.step} {outcome}")
                await run.settle()
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        return ChaosResult(
            steps, seed, run.ledger.findings, len(run.impossible), run.ledger.samples, run.log
        )


async def _stoppable(steps: int, seed: int, workdir: Path) -> ChaosResult:
    """The run, cancelled by SIGINT or SIGTERM so that the grid's processes are stopped."""
    task = asyncio.ensure_future(run_chaos(steps, seed, workdir))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print(f"chaos seed {seed}: interrupted, grid stopped", file=sys.stderr)
        raise SystemExit(130) from None


def run(args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"chaos seed {seed}", file=sys.stderr, flush=True)
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(_stoppable(args.steps, seed, workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="vmgrid-chaos-") as tmp:
            result = asyncio.run(_stoppable(args.steps, seed, Path(tmp)))
    for finding in result.findings:
        print(
            f"{finding.kind} at step {finding.step}: {finding.subject}: {finding.detail}",
            file=sys.stderr,
        )
    return dict(result.summary())
