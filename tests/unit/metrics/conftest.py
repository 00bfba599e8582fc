"""Helpers of the metrics tests: promtool on an exposition, and samples by name and labels."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest


def _promtool_problems(registry: CollectorRegistry) -> str:
    """What ``promtool check metrics`` says about the registry's exposition ('' when clean)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; make install)")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return (checked.stdout + checked.stderr).decode()


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}, for exact assertions."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def promtool_problems() -> Callable[[CollectorRegistry], str]:
    """Debian's ``promtool check metrics`` on a registry; '' when it finds nothing."""
    return _promtool_problems


@pytest.fixture
def samples() -> Callable[[CollectorRegistry], Samples]:
    return _samples
