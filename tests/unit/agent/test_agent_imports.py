"""The agent runs on every compute node: it must not drag in the manager's heavy libraries.

Its resident memory (`vmgrid-bench agent`, target 50 MB) is mostly gRPC, libvirt and the
interpreter; what is left to guard is that nothing else creeps into its import graph. The
probe prints with ``repr`` so that the probe itself imports nothing (not even json).
Runtime adds only ``queue`` and ``concurrent.futures.thread`` (asyncio.to_thread).
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from vmgrid.agents.node.libvirt_actions import xml_text
from vmgrid.agents.node.libvirt_hypervisor import is_uuid

HEAVY = (
    "numpy",
    "ortools",
    "networkx",
    "prometheus_client",
    "cryptography",
    "pycdlib",
    "aiohttp",
    "sqlite3",
    "yaml",
)
"""Third-party and stdlib libraries only the manager, coordinator or optional commands use."""

MANAGER_SIDE = (
    "vmgrid.agents.cluster",
    "vmgrid.agents.jobmodel",
    "vmgrid.agents.grid_model",
    "vmgrid.agents.grid_codec",
    "vmgrid.agents.common.etcd",
    "vmgrid.agents.common.grpc_server",
    "vmgrid.agents.common.wire_guard",
    "vmgrid.coordinator",
    "vmgrid.solver",
    "vmgrid.bench",
)
"""vmgrid packages the agent never runs (prefixes)."""

CUT = (
    "html",
    "uuid",
    "platform",
    "json",
    "shutil",
    "bz2",
    "lzma",
    "http",
    "urllib.request",
    "email",
    "xml.etree",
    "pyexpat",
)
"""Stdlib modules the agent stopped importing (#17); each costs 0.1-0.5 MB resident. (ElementTree
loads with the first command that parses XML; pyexpat too, or with a real host's first MAC read.)"""


def _loaded_by(statements: str) -> set[str]:
    probe = f"import sys; {statements}; print(repr(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded: list[str] = ast.literal_eval(out.strip().splitlines()[-1])
    return set(loaded)


@pytest.fixture(scope="module")
def agent_modules() -> set[str]:
    # what main() runs before it connects: import, then build and parse the command line
    return _loaded_by(
        "from vmgrid.agents.node import main; main.build_parser().parse_args(['--insecure'])"
    )


def test_agent_process_imports_no_heavy_library(agent_modules: set[str]) -> None:
    assert sorted(m for m in HEAVY if m in agent_modules) == []


def test_agent_process_imports_nothing_of_the_manager_coordinator_or_solver(
    agent_modules: set[str],
) -> None:
    leaked = sorted(m for m in agent_modules if m.startswith(MANAGER_SIDE))
    assert leaked == []


def test_agent_process_does_not_import_the_stdlib_modules_it_stopped_using(
    agent_modules: set[str],
) -> None:
    assert sorted(m for m in CUT if m in agent_modules) == []


def test_reading_a_real_hosts_macs_loads_expat_without_element_tree() -> None:
    loaded = _loaded_by(
        "from vmgrid.agents.node.traffic_meter import domain_macs; "
        "assert domain_macs('<domain><devices/></domain>') == ()"
    )
    assert "pyexpat" in loaded
    assert "xml.etree" not in loaded


def test_agent_imports_what_it_runs(agent_modules: set[str]) -> None:
    # the probe is live: the agent's own modules and libraries show up
    for name in ("grpc", "libvirt", "vmgrid.agents.node.agent", "vmgrid.v1.node_pb2"):
        assert name in agent_modules


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678-1234-5678-1234-567812345678", True),
        ("{12345678-1234-5678-1234-567812345678}", True),
        ("urn:uuid:12345678-1234-5678-1234-567812345678", True),
        ("12345678123456781234567812345678", True),
        ("1234567-81234-5678-1234-567812345678", True),
        ("web-1", False),
        ("12345678-1234-5678-1234-56781234567g", False),
        ("12345678-1234-5678-1234-5678123456789", False),
        ("", False),
    ],
)
def test_is_uuid_agrees_with_the_uuid_module(text: str, expected: bool) -> None:
    import uuid

    try:
        uuid.UUID(text)
        accepted = True
    except ValueError:
        accepted = False
    assert is_uuid(text) is expected is accepted


@pytest.mark.parametrize(
    "text", ["plain", "a & b", "<tag attr=\"x\">'q'</tag>", "&amp; already", ""]
)
def test_xml_text_escapes_like_html_escape(text: str) -> None:
    import html

    assert xml_text(text) == html.escape(text)
