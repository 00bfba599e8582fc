"""Dashboard settings of the programs: listen address and token files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from vmgrid.agents.common.config import parse_web_listen
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.web.launch import load_tokens, stored_tokens


def test_web_listen_accepts_host_and_port_and_names_a_bad_value() -> None:
    assert parse_web_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_web_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("8080", "host:", "host:70000", ":80"):
        with pytest.raises(ConfigError, match=f"web_listen: '{bad}'"):
            parse_web_listen(bad)


def test_generated_tokens_are_private_and_reused_on_the_next_start(tmp_path: Path) -> None:
    tokens, path = stored_tokens(tmp_path / "state")
    assert path == tmp_path / "state" / "web-tokens.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.read != tokens.operator
    assert stored_tokens(tmp_path / "state") == (tokens, path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('read = "r" * 3', "not valid TOML"),
        ('read = "short"\noperator = "operator-token-0123"', "read .* at least 16"),
        ('read = "read-token-0123456"', "operator .* at least 16"),
        ('read = "same-token-0123456"\noperator = "same-token-0123456"', "are equal"),
        (
            'read = "read-token-0123456"\noperator = "oper-token-0123456"\nadmin = "x"',
            "unknown key 'admin'",
        ),
    ],
)
def test_a_bad_token_file_is_named_with_what_is_accepted(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_tokens(path)


def test_a_missing_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="web_token_file: cannot read .*missing.toml"):
        load_tokens(tmp_path / "missing.toml")
