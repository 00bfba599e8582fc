"""`vmgrid-bench agent` starts the agent as installed: its vmgrid modules byte-compiled."""

from __future__ import annotations

import compileall
from pathlib import Path

from vmgrid.bench.agent import agent_sources, bytecode_is_fresh, compile_bytecode


def test_every_agent_module_has_fresh_bytecode_after_compiling_and_a_second_pass_writes_none() -> (
    None
):
    compile_bytecode()

    sources = agent_sources()
    assert any(s.name == "agent.py" and s.parent.name == "node" for s in sources)
    assert any(s.name == "node_pb2.py" for s in sources)
    assert [s for s in sources if not bytecode_is_fresh(s)] == []
    assert compile_bytecode() == 0


def test_bytecode_is_fresh_only_while_it_matches_its_source(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("X = 1\n")
    assert not bytecode_is_fresh(source)  # never compiled

    assert compileall.compile_file(source, quiet=2)
    assert bytecode_is_fresh(source)

    source.write_text("X = 12\n")  # edited after compiling: another size
    assert not bytecode_is_fresh(source)
