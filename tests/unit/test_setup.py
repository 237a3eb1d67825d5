"""What set-up decides is missing and what that costs, from host facts (a plain value, faked here
as a Debian 12 host like this one), and the guard that keeps apt from starting services."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest

from storprof.engine.engines import SYSTEM, Engine
from storprof.host import setup
from storprof.host.facts import HostFacts
from storprof.host.tools import PACKAGES, TOOLS, setup_tools
from storprof.results.records import DriverRecord
from storprof.views.tables import not_measured_lines, some_names

SYSTEM_20 = Engine(SYSTEM, "/usr/sbin/dockerd", (20, 10, 24), containerd_version="1.6.20")
FETCHED_28 = Engine("28.5.2", "/var/cache/storprof/engines/28.5.2/root/usr/sbin/dockerd", (28, 5, 2))
# This machine's facts: no device-mapper, zfs or aufs in the kernel, Debian 12's mkfs.erofs (no --tar).
HOST = HostFacts(filesystems=frozenset({"ext4", "xfs", "btrfs", "overlay", "fuse", "erofs"}), device_mapper=False,
                 dev_fuse=True, loop_control=True, is_root=True,
                 tools=frozenset({"dockerd", "losetup", "mount", "umount", "fuse-overlayfs", "mkfs.ext4", "mkfs.xfs",
                                  "mkfs.btrfs", "mkfs.erofs"}),
                 dockerd_version=(20, 10, 24), host_fs="ext4", engines=(SYSTEM_20,), mkfs_erofs_tar=False)
C8D = ["c8d-overlayfs@ext4", "c8d-overlayfs@xfs", "c8d-native@ext4", "c8d-btrfs@btrfs"]
GRAPHDRIVERS = ["overlay2@ext4", "overlay2@xfs", "btrfs@btrfs", "vfs@ext4", "fuse-overlayfs@ext4"]


def test_without_an_engine_the_snapshotters_and_overlay2_on_a_newer_docker_are_what_it_costs():
    with_engine = replace(HOST, engines=(SYSTEM_20, setup.FETCHED))
    assert setup.costs(HOST, with_engine) == ("overlay2@ext4 on the fetched engine", *C8D)
    assert setup.costs(with_engine, with_engine) == ()


def test_a_missing_mkfs_costs_the_specs_on_that_filesystem():
    no_xfs = replace(HOST, tools=HOST.tools - {"mkfs.xfs"}, engines=(SYSTEM_20, FETCHED_28))
    assert setup.costs(no_xfs, replace(no_xfs, tools=HOST.tools)) == ("overlay2@xfs", "c8d-overlayfs@xfs:28.5.2")


def test_after_set_up_only_the_machine_s_own_facts_are_left():
    after = setup.after_setup(replace(HOST, tools=frozenset()))
    assert after.tools >= {t.name for t in setup_tools()} and "chromium" not in after.tools
    assert "chromium" in setup.after_setup(HOST, tests=True).tools
    assert "zfs" not in after.tools                  # not set-up's: a DKMS module and a pool
    assert any(e.containerd_store for e in after.engines)
    assert set(setup._runnable(after)) == {*GRAPHDRIVERS, "overlay2@ext4 on the fetched engine", *C8D}
    assert after.device_mapper is False and after.mkfs_erofs_tar is False


def test_every_tool_names_its_package_and_what_needs_it():
    assert len({t.name for t in TOOLS}) == len(TOOLS)
    assert all(t.package and t.needed_by for t in TOOLS)
    assert PACKAGES["dockerd"] == "docker.io" and PACKAGES["nginx"] == "nginx-light"
    assert {"nginx", "iperf3"} <= {s for t in TOOLS for s in t.services}


def test_the_check_says_each_missing_part_and_its_cost_in_one_line():
    found = setup.Check(
        missing=(setup.Missing("engine", "engine", None, setup.ENGINE_NEEDED_BY, ("c8d-overlayfs@ext4",)),
                 setup.Missing("tool", "sockperf", "sockperf", "storprof net's latency workload", ())),
        tools=("fio",), engines=(SYSTEM_20,), runnable=("vfs@ext4",),
        machine=(("kernel has no device-mapper", ("devicemapper@ext4", "c8d-devmapper@ext4")),))
    lines = found.lines()
    assert lines[0].startswith("missing: an engine with the containerd image store")
    assert lines[0].endswith("without it c8d-overlayfs@ext4 cannot run here")
    assert lines[1] == "missing: sockperf (package sockperf), for storprof net's latency workload"
    assert "  devicemapper@ext4 and c8d-devmapper@ext4: kernel has no device-mapper" in lines
    data = found.to_json()
    assert data["complete"] is False and [m["kind"] for m in data["missing"]] == ["engine", "tool"]
    assert data["containerd_store"] is False


def test_not_measured_says_each_reason_once():
    def skipped(spec: str, reason: str, status: str = "skipped") -> DriverRecord:
        return DriverRecord(run_id="r", driver_spec=spec, driver=spec.split("@")[0], fs="ext4", status=status,
                            reason=reason)
    no_engine = "no Docker engine here has the containerd image store (Docker 24 or later)"
    status = [skipped(s, no_engine) for s in ("c8d-overlayfs@ext4", "c8d-native@ext4", "a", "b", "c", "d", "e")]
    status += [skipped("devicemapper@ext4", "kernel has no device-mapper"),
               skipped("vfs@ext4", "dockerd exited", "failed"),
               DriverRecord(run_id="r", driver_spec="overlay2@ext4", driver="overlay2", fs="ext4", status="ok")]
    assert not_measured_lines(status) == [f"c8d-overlayfs@ext4, c8d-native@ext4 and 5 more: {no_engine}",
                                          "devicemapper@ext4: kernel has no device-mapper",
                                          "vfs@ext4: failed: dockerd exited"]
    assert [some_names(list("abc")), some_names(list("ab")), some_names(["a"])] == ["a, b and c", "a and b", "a"]


@pytest.fixture
def policy(tmp_path, monkeypatch):
    path = tmp_path / "policy-rc.d"
    monkeypatch.setattr(setup, "POLICY_RC_D", path)
    return path


def test_the_service_guard_is_made_for_the_install_and_removed_after(policy):
    with setup.services_kept_stopped():
        assert policy.read_text() == setup.SERVICE_GUARD and stat.S_IMODE(policy.stat().st_mode) == 0o755
    assert not policy.exists()
    with pytest.raises(RuntimeError), setup.services_kept_stopped():
        raise RuntimeError("apt-get failed")
    assert not policy.exists()


def test_someone_else_s_policy_is_left_alone_and_a_killed_setup_s_is_removed(policy):
    policy.write_text("#!/bin/sh\nexit 101\n")
    with setup.services_kept_stopped():
        pass
    assert policy.read_text() == "#!/bin/sh\nexit 101\n"
    policy.unlink()
    policy.write_text(setup.SERVICE_GUARD)          # left by a set-up killed mid-install
    with setup.services_kept_stopped():
        assert policy.exists()
    assert not policy.exists()


def test_a_symlink_in_the_guard_s_place_is_not_followed_or_removed(policy, tmp_path):
    target = tmp_path / "target"
    target.write_text("not ours")
    os.symlink(target, policy)
    with setup.services_kept_stopped():
        pass
    assert policy.is_symlink() and target.read_text() == "not ours"
