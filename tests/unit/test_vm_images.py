"""The driver's boot and stop commands follow the VmImages table it is given."""

from __future__ import annotations

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.driver import ManagerDriver
from vmgrid.agents.cluster.act.images import SHUTDOWN, StopHow, StopMode, VmImages
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig


def test_boots_and_stops_follow_the_table_and_fall_back_to_start_and_shutdown() -> None:
    images = VmImages()
    driver = ManagerDriver(ClusterManager(ClusterConfig()), images=images)
    assert driver.images is images
    assert driver._boot("c1", "a") == m.StartCommand("c1", "a")
    assert driver._stop("c2", "a") == m.ShutdownCommand("c2", "a")

    images.set_boot_image("a", "/ckpt/a.save")
    images.set_stop_mode("a", StopMode(StopHow.SAVE, "/ckpt/a.save"))
    images.set_stop_mode("b", StopMode(StopHow.DESTROY))
    assert driver._boot("c3", "a") == m.RestoreCommand("c3", "/ckpt/a.save")
    assert driver._stop("c4", "a") == m.SaveCommand("c4", "a", "/ckpt/a.save")
    assert driver._stop("c5", "b") == m.DestroyCommand("c5", "b")
    assert driver._boot("c6", "b") == m.StartCommand("c6", "b")

    images.set_boot_image("a", "")
    images.set_stop_mode("a", SHUTDOWN)
    assert driver._boot("c7", "a") == m.StartCommand("c7", "a")
    assert driver._stop("c8", "a") == m.ShutdownCommand("c8", "a")


def test_a_save_without_a_file_is_refused_naming_the_vm() -> None:
    with pytest.raises(ValueError, match="save of VM a needs the path"):
        VmImages().set_stop_mode("a", StopMode(StopHow.SAVE))
