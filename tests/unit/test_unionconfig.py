"""Overlay parameter switches in specs, and putting them back (on a directory standing in for
/sys/module/overlay/parameters)."""

from __future__ import annotations

import pytest

from storprof.engine import unionconfig
from storprof.engine.drivers import DriverSpec
from storprof.errors import UserError
from storprof.harness import ownership, state
from storprof.harness.layout import RunLayout
from storprof.results.records import ProbeRecord, RunContext


@pytest.fixture
def params(tmp_path):
    for name, value in (("redirect_dir", "N"), ("metacopy", "N"), ("index", "N"), ("xino_auto", "N"),
                        ("redirect_always_follow", "Y")):
        (tmp_path / name).write_text(f"{value}\n")
    return tmp_path


def test_a_spec_names_overlay_parameters_after_plus_and_keeps_them_in_its_name():
    spec = DriverSpec.parse("overlay2@ext4+redirect_dir+metacopy", "ext4")
    assert spec.overlay == ("metacopy", "redirect_dir")
    assert str(spec) == "overlay2@ext4+metacopy+redirect_dir"
    assert spec.slug == "overlay2-ext4-metacopy-redirectdir"
    assert DriverSpec.parse("overlay2@ext4", "ext4").overlay == ()


@pytest.mark.parametrize("text", ["vfs@ext4+redirect_dir", "btrfs+metacopy", "overlay2+", "overlay2+nfs_export",
                                  "overlay2+redirect_dir=on", "overlay2+../../etc/x", "overlay2+REDIRECT DIR",
                                  "overlay2+check_copy_up", "overlay2+redirect_max"])
def test_only_listed_parameters_on_kernel_overlay_drivers(text):
    with pytest.raises(UserError):
        DriverSpec.parse(text, "ext4")


def test_switches_are_set_then_put_back_and_clean_finds_them(params, tmp_path):
    switch = unionconfig.OverlayParams(("metacopy", "redirect_dir"), root=params)
    switch.read_before()
    record = {"kind": "overlay", "run_id": "a1b2c3d4e5", **switch.record()}
    switch.apply()
    assert unionconfig.overlay_params(params)["redirect_dir"] == "Y"
    # a kill -9 later, clean derives the same parameters from the ownership record
    owned = ownership.derive(record, RunLayout(tmp_path, "a1b2c3d4e5"), overlay_root=params)
    assert owned is not None
    assert owned.leftover() == ["overlay parameter metacopy=Y (was N)", "overlay parameter redirect_dir=Y (was N)"]
    assert state.remove([owned]) == []
    assert unionconfig.overlay_params(params)["redirect_dir"] == "N"
    assert unionconfig.overlay_params(params)["metacopy"] == "N"
    assert owned.leftover() == []


def test_a_value_someone_changed_since_is_left_alone(params):
    switch = unionconfig.OverlayParams(("redirect_dir",), root=params)
    switch.read_before()
    switch.apply()
    (params / "redirect_dir").write_text("N\n")     # someone else's change back, then theirs again
    (params / "redirect_dir").write_text("follow\n")
    assert unionconfig.put_back(switch.record(), params) == []
    assert (params / "redirect_dir").read_text().strip() == "follow"


def test_a_missing_parameter_is_refused_before_anything_changes(tmp_path):
    switch = unionconfig.OverlayParams(("metacopy",), root=tmp_path)
    with pytest.raises(UserError, match="no parameter metacopy"):
        switch.read_before()


def test_put_back_ignores_parameters_a_record_may_not_name(params):
    (params / "redirect_max").write_text("256\n")
    record = {"before": {"redirect_max": "1"}, "set": {"redirect_max": "256"}}
    assert unionconfig.put_back(record, params) == []
    assert (params / "redirect_max").read_text().strip() == "256"


def test_driver_status_and_mount_options_read_as_the_daemon_and_kernel_give_them():
    info = {"DriverStatus": [["Backing Filesystem", "extfs"], ["Native Overlay Diff", "false"], ["", "x"]]}
    assert unionconfig.driver_status(info) == {"Backing Filesystem": "extfs", "Native Overlay Diff": "false"}
    assert unionconfig.driver_status({}) == {}
    assert "rw" in unionconfig.backing_mount_options("/")


def test_a_probe_record_keeps_its_bytes_and_the_context_its_configuration():
    context = RunContext(run_id="r", driver_spec="overlay2@ext4", driver="overlay2", fs="ext4",
                         driver_status={"Native Overlay Diff": "true"}, overlay_params={"redirect_dir": "N"},
                         backing_mount_options="rw,relatime")
    record = ProbeRecord(context=context, workload="union-ops", operation="chown", size_mib=64,
                         placement="union", repeat=0, seconds=0.05, bytes=67125248)
    data = record.to_json()
    assert data["metrics"] == {"seconds": 0.05, "bytes": 67125248} and "bytes" not in data
    assert data["overlay_params"] == {"redirect_dir": "N"}
    back = ProbeRecord.from_json(data)
    assert back.bytes == 67125248 and back.context.driver_status == {"Native Overlay Diff": "true"}
    without = ProbeRecord(context=context, workload="copyup", operation="first write", size_mib=1,
                          placement="union", repeat=0, seconds=1.0)
    assert "bytes" not in without.to_json()["metrics"] and ProbeRecord.from_json(without.to_json()).bytes is None
