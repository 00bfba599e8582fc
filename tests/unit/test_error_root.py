"""Every exception class vmgrid defines derives from the one root, VmgridError."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path

import pytest
from vmgrid.agents import errors as agent_errors
from vmgrid.v1.errors import VmgridError

ROOT = Path(__file__).resolve().parents[2]


def _top_packages() -> list[str]:
    """The vmgrid.* namespace packages the distribution maps onto the project's folders."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        packages = tomllib.load(f)["tool"]["setuptools"]["packages"]
    return sorted(p for p in packages if p.count(".") == 1)


def _modules() -> list[str]:
    names = []
    for top in _top_packages():
        package = importlib.import_module(top)
        names.append(top)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{top}.")]
    return names


@functools.cache
def _exception_classes() -> list[type[BaseException]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def test_the_agents_root_is_the_one_root() -> None:
    assert agent_errors.VmgridError is VmgridError


def test_the_walk_sees_every_area() -> None:
    names = {c.__module__.split(".")[1] for c in _exception_classes()}
    assert {"agents", "coordinator", "solver", "lab"} <= names


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_vmgrid_exception_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, VmgridError), f"{cls.__module__}.{cls.__name__} is not a VmgridError"


def test_older_bases_still_catch_what_they_caught() -> None:
    from vmgrid.agents.jobmodel.errors import JobSpecError
    from vmgrid.solver.model import ModelError
    from vmgrid.solver.planner import PlanError

    assert issubclass(ModelError, ValueError)
    assert issubclass(JobSpecError, ValueError)
    assert issubclass(PlanError, RuntimeError)
    assert JobSpecError("cpu", -1, "a positive integer").grpc_status == "INVALID_ARGUMENT"
