"""The member store's records of memory checkpoints: parts, completeness, boot images."""

from __future__ import annotations

from vmgrid.agents.cluster.jobs.members import MemberStore


def test_a_checkpoint_with_parts_but_no_listing_is_partial_and_removal_drops_both() -> None:
    store = MemberStore()
    store.add_part("j", "ckpt-1", "vm-a", "/c/a.save")
    store.add_part("j", "ckpt-1", "vm-b", "/c/b.save")
    store.add_checkpoint("j", "ckpt-1", 1.0)
    store.add_part("j", "ckpt-2", "vm-a", "/c/a2.save")  # its manager stopped midway
    assert store.partial() == [("j", "ckpt-2")]
    assert store.parts("j", "ckpt-1") == {"vm-a": "/c/a.save", "vm-b": "/c/b.save"}
    store.remove_checkpoint("j", "ckpt-1")
    assert store.parts("j", "ckpt-1") == {} and store.checkpoints("j") == []
    store.set_boot_image("vm-a", "/c/a.save")
    assert store.boot_image("vm-a") == "/c/a.save"
    store.set_boot_image("vm-a", "")
    assert store.boot_image("vm-a") == ""
