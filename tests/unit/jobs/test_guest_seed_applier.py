"""The lab image's seed applier (deploy/lab/image/files/usr/local/sbin/vmgrid-seed) applies
every seed vmgrid writes itself, and hands any other seed to cloud-init.

The applier runs in the guest at first boot; here its parsing and its decision are checked
against the seeds of agents/jobmodel/seed.py. Applying (useradd, mount...) is covered by the
submission lab test, which logs into guests booted from the image.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from jobs_builders import job
from vmgrid.agents.jobmodel import parse_job
from vmgrid.agents.jobmodel.seed import meta_data, user_data

APPLIER = Path(__file__).absolute().parents[3] / "deploy/lab/image/files/usr/local/sbin/vmgrid-seed"


@pytest.fixture(scope="module")
def applier() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("vmgrid_seed_applier", str(APPLIER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def everything_installed(_: str) -> bool:
    return True


@pytest.mark.parametrize("nfs", [[], [{"source": "fs1:/export", "mountpoint": "/srv/shared"}]])
def test_every_seed_vmgrid_writes_is_applied_without_cloud_init(
    applier: ModuleType, nfs: list[dict[str, str]]
) -> None:
    spec = parse_job(job(image="/img/base.qcow2", nfs=nfs))
    config = applier.parse_user_data(user_data(spec, "mpi-1"))
    assert config is not None
    assert applier.unsupported(config, everything_installed) == []
    assert [m[:3] for m in config.get("mounts", [])] == [
        [m["source"], m["mountpoint"], "nfs"] for m in nfs
    ]
    meta = applier.parse_meta_data(meta_data("job42-mpi-1", "mpi-1"))
    assert meta == {"instance-id": "job42-mpi-1", "local-hostname": "mpi-1"}


def test_a_seed_asking_for_more_goes_to_cloud_init(applier: ModuleType) -> None:
    spec = parse_job(job(image="/img/base.qcow2"))
    config = applier.parse_user_data(user_data(spec, "mpi-1"))
    config["runcmd"] = [["touch", "/tmp/x"]]
    config["users"][0]["groups"] = "docker"
    config["mounts"] = [["fs1:/export", "/srv", "nfs", 0]]
    problems = applier.unsupported(config, everything_installed)
    assert problems == ["key 'runcmd'", "user keys ['groups']", f"mounts {config['mounts']!r}"]


def test_a_package_missing_from_the_image_goes_to_cloud_init(applier: ModuleType) -> None:
    config = {"packages": ["nfs-common", "emacs"]}
    problems = applier.unsupported(config, lambda name: name == "nfs-common")
    assert problems == ["package 'emacs' not in the image"]


def test_only_cloud_config_json_and_plain_meta_data_are_parsed_here(applier: ModuleType) -> None:
    assert applier.parse_user_data("#cloud-config\n" + json.dumps({"a": 1})) == {"a": 1}
    assert applier.parse_user_data("#cloud-config\nusers:\n  - name: bob\n") is None  # YAML
    assert applier.parse_user_data("#!/bin/sh\necho hi\n") is None  # a user script
    assert applier.parse_user_data("#cloud-config\n[1, 2]") is None
    assert applier.parse_meta_data("instance-id: i-1\n# note\n\nlocal-hostname: 'h'\n") == {
        "instance-id": "i-1",
        "local-hostname": "h",
    }
    assert applier.parse_meta_data("network:\n  version: 2\n") is None
