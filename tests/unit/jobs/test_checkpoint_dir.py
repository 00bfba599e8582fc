"""Where memory checkpoints go: the setting, its default and its errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from vmgrid.agents.cluster.jobs.memory_checkpoints import checkpoint_dir
from vmgrid.agents.cluster.service import ft_config
from vmgrid.agents.errors import ConfigError


def test_a_configured_directory_is_used_as_it_is(tmp_path: Path) -> None:
    assert checkpoint_dir(str(tmp_path), "/elsewhere") == tmp_path


def test_the_default_is_a_folder_of_the_shared_storage_made_when_missing(tmp_path: Path) -> None:
    found = checkpoint_dir("", str(tmp_path))
    assert found == tmp_path / "checkpoints" and found.is_dir()


def test_without_shared_storage_checkpoints_hold_disks_only() -> None:
    assert checkpoint_dir("", "") is None


@pytest.mark.parametrize("bad", ["relative/dir", "/no/such/vmgrid/dir"])
def test_a_missing_or_relative_directory_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"checkpoint_dir '{bad}' is not an existing directory"):
        checkpoint_dir(bad, "")


def test_a_file_in_place_of_the_default_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").write_text("")
    with pytest.raises(ConfigError, match="checkpoints' cannot be created"):
        checkpoint_dir("", str(tmp_path))


def test_the_flag_reaches_the_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    ft_config.add_arguments(parser)
    args = parser.parse_args(["--jobs", f"--checkpoint-dir={tmp_path}"])
    options = ft_config.options(None, args, ":memory:")
    assert options is not None and options.checkpoint_dir == str(tmp_path)
