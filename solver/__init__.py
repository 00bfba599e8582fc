"""vmgrid.solver: pure decision code (no grpc, no libvirt, no I/O).

Pipeline, one module per stage: `model` (snapshot values) -> `problem` (derived facts, filters)
-> `heuristics` (FFD, greedy repair) -> `cpsat` (repair model with `constraints` plugins and
`objectives`) -> `lns` (CP-SAT neighbourhoods over the answer) -> `planner` (timed plan, `plan`)
-> `schedule_cpsat` (the plan re-timed by makespan or MTTR, when asked; the VMs of migration
cycles may change pivot, `schedule_routes`) -> `explain` (reasons, conflicting sets).
Entry point: `solve(Problem(model, constraints, objective), SolveOptions()) -> SolveResult`.
"""

from vmgrid.solver.api import SolveOptions, SolveResult, SolveStats, solve
from vmgrid.solver.cpsat import CpsatOptions
from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, ModelError, Node, NodeState, VMState
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.planner import PlanError, PlannerOptions
from vmgrid.solver.problem import Problem
from vmgrid.solver.schedule_cpsat import ScheduleOptions, ScheduleResult, improve_schedule

__all__ = [
    "CPU",
    "MEMORY",
    "NET",
    "VM",
    "Action",
    "ActionKind",
    "CpsatOptions",
    "Model",
    "ModelError",
    "Node",
    "NodeState",
    "Plan",
    "PlanError",
    "PlannerOptions",
    "Problem",
    "ScheduleOptions",
    "ScheduleResult",
    "SolveOptions",
    "SolveResult",
    "SolveStats",
    "VMState",
    "improve_schedule",
    "solve",
]
