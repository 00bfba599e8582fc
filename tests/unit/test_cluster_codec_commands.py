"""encode_command turns protobuf's TypeError/ValueError into one error naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec import UnencodableCommand, decode_command, encode_command
from vmgrid.agents.errors import InvalidArgument


@pytest.mark.parametrize(
    ("command", "field", "named"),
    [
        (m.SuspendCommand("c1", 5), "command.suspend.vm_uuid", "5 (int) must be a string"),  # type: ignore[arg-type]
        (
            m.MigrateCommand("c2", "vm", "qemu:///x", bandwidth_cap_bps="fast"),  # type: ignore[arg-type]
            "command.migrate.bandwidth_cap_bps",
            "'fast' (str) must be an integer in range",
        ),
        (
            m.MigrateCommand("c3", "vm", "qemu:///x", bandwidth_cap_bps=2**70),
            "command.migrate.bandwidth_cap_bps",
            f"{2**70} (int) must be an integer in range",
        ),
        (m.SuspendCommand("", "vm"), "command.command_id", "'' must be a non-empty string"),
        (m.SuspendCommand(7, "vm"), "command.command_id", "7 must be a non-empty string"),  # type: ignore[arg-type]
    ],
    ids=["str-field-given-int", "int-field-given-str", "int-out-of-range", "empty-id", "int-id"],
)
def test_wrongly_typed_command_field_is_named_with_its_value(
    command: Any, field: str, named: str
) -> None:
    with pytest.raises(UnencodableCommand) as err:
        encode_command(command)
    assert err.value.field == field
    assert named in str(err.value) and str(err.value).startswith(f"{field}: ")
    # Both the project's root type for bad input and a plain ValueError for callers.
    assert isinstance(err.value, InvalidArgument) and isinstance(err.value, ValueError)


def test_a_non_command_is_refused_listing_the_accepted_kinds() -> None:
    with pytest.raises(UnencodableCommand) as err:
        encode_command(m.Heartbeat(1, 1))  # type: ignore[arg-type]
    assert err.value.field == "command" and "accepted: abort_migration, create_snapshot" in str(
        err.value
    )


def test_well_typed_commands_still_round_trip() -> None:
    command = m.MigrateCommand("c4", "vm", "qemu:///x", bandwidth_cap_bps=10**9, live=False)
    assert decode_command(encode_command(command)) == command
