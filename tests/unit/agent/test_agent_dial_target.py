"""The agent dials an IP-literal manager address without gRPC's DNS resolver (#17)."""

from __future__ import annotations

import pytest
from vmgrid.agents.node.rpc import dial_target


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("127.0.0.1:7443", "ipv4:127.0.0.1:7443"),
        ("10.20.30.40:1", "ipv4:10.20.30.40:1"),
        ("[::1]:7443", "ipv6:[::1]:7443"),
        ("[fd00::5]:50051", "ipv6:[fd00::5]:50051"),
        ("manager.example:7443", "manager.example:7443"),
        ("localhost:7443", "localhost:7443"),
        ("10.0.0.256:7443", "10.0.0.256:7443"),
        ("1.2.3:7443", "1.2.3:7443"),
        ("[fe80::1%eth0]:7443", "[fe80::1%eth0]:7443"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:http", "127.0.0.1:http"),
        ("ipv4:127.0.0.1:7443", "ipv4:127.0.0.1:7443"),
        ("dns:///127.0.0.1:7443", "dns:///127.0.0.1:7443"),
        ("unix:/run/vmgrid.sock", "unix:/run/vmgrid.sock"),
    ],
)
def test_an_ip_literal_gets_its_scheme_and_anything_else_is_left_to_grpc(
    address: str, target: str
) -> None:
    assert dial_target(address) == target
