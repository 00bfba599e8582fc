"""The helpers the cluster manager and the coordinator share (vmgrid.agents.common)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from vmgrid.agents.common.config import check_keys, check_listen
from vmgrid.agents.common.event_bus import FanOut
from vmgrid.agents.errors import ConfigError


@dataclass(frozen=True)
class _Settings:
    period_s: float = 1.0
    name: str = "x"


def test_check_keys_makes_ints_of_float_fields_floats() -> None:
    assert check_keys({"period_s": 2}, _Settings(), "f.toml") == {"period_s": 2.0}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nope": 1}, "config: unknown key 'nope'; accepted: period_s, name"),
        ({"name": 3}, "config: name = 3 must be a str in 'f.toml'"),
    ],
)
def test_check_keys_names_the_bad_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_keys(dict(data), _Settings(), "f.toml")
    assert str(caught.value) == message


@pytest.mark.parametrize("listen", ["7443", ":7443", "host:port", "h:70000"])
def test_check_listen_rejects_what_is_not_host_port(listen: str) -> None:
    with pytest.raises(ConfigError, match="is not host:port"):
        check_listen(listen, "127.0.0.1:1")


def test_fan_out_drops_the_oldest_event_of_a_full_subscriber_and_counts_it() -> None:
    bus: FanOut[int] = FanOut(clock_ns=lambda: 0)
    sub = bus.subscribe(accept=lambda e: e % 2 == 0, max_queued=2)
    assert bus.subscribers == 1
    for event in range(1, 8):
        bus._deliver(event)
    assert (sub.dropped, sub.get_nowait(), sub.get_nowait(), sub.get_nowait()) == (1, 4, 6, None)
    sub.close()
    bus._deliver(8)
    assert sub.get_nowait() is None and bus.subscribers == 0
