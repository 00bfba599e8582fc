"""The deny list's text form and its re-reading (the servers' use is in the integration tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.common.revocation import DenyList, parse_entries
from vmgrid.agents.identity import Identity, Role


def test_entries_are_serials_and_holders_and_a_bad_line_is_named_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "serial:1f  # old cluster key\n\nvmgrid://node/n1\nnode n2\nserial:xyz\n"
    entries = parse_entries(text, "revoked.txt")
    assert entries.serials == {0x1F}
    assert entries.identities == {Identity(Role.NODE, "n1")}
    assert "revoked.txt:4: 'node n2' is neither" in caplog.text
    assert "revoked.txt:5: 'serial:xyz' is neither" in caplog.text


def test_the_list_is_reread_when_it_changes_and_a_missing_file_denies_nothing(
    tmp_path: Path,
) -> None:
    now = [0.0]
    deny = DenyList(tmp_path / "revoked.txt", check_interval_s=1.0, clock=lambda: now[0])
    node = Identity(Role.NODE, "n1")
    assert deny.reason(5, node) == ""
    (tmp_path / "revoked.txt").write_text("vmgrid://node/n1\n")
    assert deny.reason(5, node) == "", "re-read at most once a second"
    now[0] = 1.0
    assert deny.reason(5, node) == "vmgrid://node/n1 is revoked"
    (tmp_path / "revoked.txt").write_text("serial:5\n")
    now[0] = 2.0
    assert deny.reason(5, None) == "certificate serial 5 is revoked"
    assert deny.reason(6, node) == ""
    (tmp_path / "revoked.txt").unlink()
    now[0] = 3.0
    assert deny.reason(5, node) == ""
