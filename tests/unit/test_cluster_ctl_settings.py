"""vmgridctl connection settings: flags > environment > config file > default, checked early."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.cli import settings


def args(**flags: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "cluster": None,
        "coordinator": None,
        "certs": None,
        "config": None,
    }
    values.update(flags)
    return argparse.Namespace(**values)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_defaults_without_flags_env_or_file() -> None:
    got = settings.resolve(args())
    assert got == settings.Settings(settings.DEFAULT_CLUSTER, "", "")


def test_flag_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ctl.toml"
    config.write_text('cluster = "file:1"\ncerts = "/file/certs"\ncoordinator = "co:2"\n')
    from_file = settings.resolve(args(config=str(config)))
    assert (from_file.cluster, from_file.certs, from_file.coordinator) == (
        "file:1",
        "/file/certs",
        "co:2",
    )
    monkeypatch.setenv("VMGRID_CLUSTER", "env:1")
    assert settings.resolve(args(config=str(config))).cluster == "env:1"
    assert settings.resolve(args(config=str(config), cluster="flag:1")).cluster == "flag:1"


def test_default_config_file_is_read_from_home(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "vmgrid" / "vmgridctl.toml"
    path.parent.mkdir(parents=True)
    path.write_text('cluster = "home:7443"\n')
    assert settings.resolve(args()).cluster == "home:7443"


@pytest.mark.parametrize(
    ("content", "flags", "named"),
    [
        ('colour = "blue"\n', {}, "'colour'"),
        ("cluster = 7\n", {}, "cluster must be a string"),
        ("cluster = [\n", {}, "ctl.toml"),
        ("", {"cluster": "nowhere"}, "'nowhere'"),
        ("", {"cluster": "h:99999"}, "'h:99999'"),
    ],
)
def test_bad_settings_name_the_value(
    tmp_path: Path, content: str, flags: dict[str, object], named: str
) -> None:
    config = tmp_path / "ctl.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as err:
        settings.resolve(args(config=str(config), **flags))
    assert named in str(err.value)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        settings.resolve(args(config=str(tmp_path / "absent.toml")))
