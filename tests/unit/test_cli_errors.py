"""Bad input ends in one line on stderr and a non-zero exit, before any daemon starts."""

import os
import subprocess

import pytest
from click.testing import CliRunner

from storprof import cli
from storprof.host import proc


def run(args, **kw):
    result = CliRunner().invoke(cli.main, args, **kw)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    message = result.stderr.strip()
    assert "Traceback" not in result.output + result.stderr
    assert len(message.splitlines()) == 1, message
    return result.exit_code, message


def test_unknown_driver():
    code, msg = run(["sweep", "--drivers", "overlay3"])
    assert code == 2 and "unknown storage driver 'overlay3'" in msg and "overlay2" in msg


def test_driver_on_a_filesystem_it_cannot_use():
    code, msg = run(["sweep", "--drivers", "btrfs@xfs"])
    assert code == 2 and "btrfs" in msg


def test_unknown_job_name():
    code, msg = run(["sweep", "--jobs", "nosuchjob"])
    assert code == 2 and "nosuchjob" in msg and "randread-4k" in msg


def test_broken_job_file_names_the_line(tmp_path):
    job = tmp_path / "bad.fio"
    job.write_text("[global]\nrw=randread\nthis is not an option line\n")
    code, msg = run(["sweep", "--jobs", str(job)])
    assert code == 2 and "bad.fio:3" in msg


def test_job_file_fio_rejects(tmp_path):
    job = tmp_path / "typo.fio"
    job.write_text("[typo]\nrw=randread\nbogus_option=3\n")
    code, msg = run(["sweep", "--jobs", str(job)])
    assert code == 2 and "bogus_option" in msg


def test_missing_job_file(tmp_path):
    code, msg = run(["sweep", "--jobs", str(tmp_path / "absent.fio")])
    assert code == 2 and "absent.fio" in msg


def test_unknown_placement():
    code, msg = run(["sweep", "--placements", "host,attic"])
    assert code == 2 and "attic" in msg


def test_bad_runtime():
    code, msg = run(["sweep", "--runtime", "-1"])
    assert code == 2 and "runtime" in msg


def test_workdir_on_tmpfs_is_refused(tmp_path):
    """A tmpfs root alone can write (so only its filesystem is wrong): mounted here for the test."""
    point = tmp_path / "mem"
    point.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(point)], check=True)
    try:
        code, msg = run(["sweep", "--drivers", "vfs", "--workdir", str(point / "storprof-test")])
        assert code == 2 and "is on tmpfs" in msg and "lives in memory" in msg, msg
        assert not (point / "storprof-test").exists()
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_output_directory_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, msg = run(["sweep", "--drivers", "vfs", "--workdir", str(tmp_path / "w"), "--out", str(blocker / "x")])
    assert code == 2 and "results directory" in msg and "file is not a directory" in msg, msg


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, msg = run(["sweep", "--drivers", "vfs"])
    assert "root" in msg


@pytest.mark.parametrize("tool,package", [("fio", "fio"), ("dockerd", "docker.io")])
def test_missing_binary_names_its_package(monkeypatch, tool, package):
    real_which = proc.shutil.which
    monkeypatch.setattr(proc.shutil, "which", lambda name, path=None: None if name == tool else real_which(name))
    code, msg = run(["sweep", "--drivers", "vfs"])
    assert f"{tool} is not installed" in msg and f"'{package}'" in msg


def test_table_of_a_directory_that_is_not_a_results_directory(tmp_path):
    code, msg = run(["table", str(tmp_path)])
    assert code == 2 and "not a storprof results directory" in msg


def test_not_enough_disk_space_is_refused_with_numbers(tmp_path):
    code, msg = run(["sweep", "--drivers", "vfs", "--size", "900g", "--workdir", str(tmp_path / "w"),
                     "--out", str(tmp_path / "out")])
    assert "not enough space" in msg and "GiB" in msg
    assert not (tmp_path / "out").exists()


def test_unreachable_docker_host_makes_no_results_directory(tmp_path):
    code, msg = run(["sweep", "--docker-host", f"unix://{tmp_path}/absent.sock", "--out", str(tmp_path / "out")])
    assert code == 4 and "cannot reach the Docker daemon" in msg
    assert not (tmp_path / "out").exists()


def test_layers_bad_input():
    assert "positive" in run(["layers", "--depths", "0"])[1]
    assert "whole numbers" in run(["layers", "--layer-sizes", "a,b"])[1]
    assert "at most 120 layers" in run(["layers", "--drivers", "overlay2", "--depths", "1,500"])[1]


@pytest.mark.parametrize("args, fragment", [
    (["--stack-depths", "1,500"], "--stack-depths"),
    (["--stack-depths", "1,deep"], "whole numbers or 'max'"),
    (["--copyup-sizes", "64,big"], "--copyup-sizes"),
    (["--copyup-sizes", "0"], "--copyup-sizes"),
    (["--jobs", "copyup", "--placements", "host,volume"], "add union to --placements"),
])
def test_bad_union_probe_options(args, fragment):
    code, msg = run(["sweep", "--jobs", "copyup,deep-stack", *args])
    assert code == 2 and fragment in msg


def test_unknown_directive_in_a_job_file(tmp_path):
    job = tmp_path / "d.fio"
    job.write_text("; storprof: lowerlayer\n[d]\nrw=read\n")
    code, msg = run(["sweep", "--jobs", str(job)])
    assert code == 2 and "d.fio:1" in msg and "unknown storprof directive 'lowerlayer'" in msg


def test_truncated_results_file_is_used_with_a_one_line_warning(tmp_path):
    import shutil

    from tests.unit.test_tables import SWEEP
    copy = tmp_path / "r"
    shutil.copytree(SWEEP, copy)
    with open(copy / "results.jsonl", "a") as f:
        f.write('{"kind": "fio", "job": "randread-4k", "trunc')
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "storprof.cli", "table", str(copy)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "randread-4k" in result.stdout
    warnings = [ln for ln in result.stderr.splitlines() if "warning" in ln.lower()]
    assert warnings and all(ln.startswith("storprof: warning:") and "truncated" in ln for ln in warnings)


@pytest.mark.parametrize("args, fragment", [
    (["table", ".", "--format", "yaml"], "Invalid value for '--format'"),
    (["sweep", "--repeat", "0"], "Invalid value for '--repeat'"),
    (["sweep", "--bogus"], "No such option '--bogus'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
])
def test_click_usage_errors_are_one_line_too(args, fragment):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("storprof: ") and fragment in lines[0], done.stderr


HOSTILE_JOBS = {
    "section path": "[global]\nioengine=filecreate\nnrfiles=1\n[../../../../tmp/x]\n",
    "file pattern": "[j]\nrw=write\nbuffer_pattern='/etc/hostname'\n",
    "environment": "[j]\nrw=read\nsize=${HOME}\n",
    "global alias": "[global2]\nexec_prerun=x\n[j]\n",
    "alias": "[j]\nrw=read\ntimeout=9999999\n",
    "resources": "[j]\nrw=read\nnumjobs=4096\n",
}


@pytest.mark.parametrize("kind", HOSTILE_JOBS)
def test_a_hostile_job_file_is_one_line_before_anything_starts(tmp_path, kind):
    job = tmp_path / "hostile.fio"
    job.write_text(HOSTILE_JOBS[kind])
    code, msg = run(["sweep", "--drivers", "vfs", "--jobs", str(job), "--workdir", str(tmp_path / "w"),
                     "--out", str(tmp_path / "out")])
    assert code == 2 and msg.startswith(f"storprof: {job}:")
    assert not (tmp_path / "out").exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--allow-option", "filename"], "never allows it"),
    (["--allow-option", "x;rm"], "takes a fio option name"),
    (["--storage-opt", "overlay2.mount_program=/bin/sh"], "storprof passes only"),
    (["--storage-opt", "overlay2.size=1g;x"], "not a value overlay2.size takes"),
    (["--image", "x;y"], "--image takes an image reference"),
    (["--docker-host", "unix:///x y"], "--docker-host takes"),
    (["--size", "-5"], "--size takes a size"),
    (["--size", "5%"], "--size takes a size"),
    (["--ramp-time", "-1"], "--ramp-time"),
    (["--runtime", "1e9"], "--runtime"),
    (["--fio-timeout", "1"], "Invalid value for '--fio-timeout'"),
    (["--cpus", "99"], "--cpus 99: this machine lets storprof run on CPUs"),
    (["--lookup-files", "5"], "--lookup-files takes a count"),
])
def test_bad_option_values_are_one_line_before_anything_starts(tmp_path, args, fragment):
    code, msg = run(["sweep", "--drivers", "vfs", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "out"),
                     *args])
    assert code == 2 and fragment in msg, msg
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("workdir, fragment", [
    ("/proc/storprof-x", "is on proc"), ("/sys/storprof-x", "is on sysfs"),
    ("/etc/passwd/x", "/etc/passwd is not a directory"),
    ("/dev/shm/storprof-x", "/dev/shm is writable by others (mode 1777)"),
    ("/var/tmp/storprof-x", "/var/tmp is writable by others (mode 1777)"),
])
def test_a_work_directory_storprof_cannot_use_is_one_line_and_nothing_is_made(tmp_path, workdir, fragment):
    code, msg = run(["sweep", "--drivers", "vfs", "--workdir", workdir, "--out", str(tmp_path / "out")])
    assert code == 2 and fragment in msg, msg
    assert not os.path.exists(workdir) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["ssh://-oProxyCommand=touch /tmp/x@host", "ssh://me@-oProxyCommand=x",
                                     "tcp://-h:1"])
def test_a_daemon_address_whose_part_begins_with_a_dash_is_refused(tmp_path, address):
    code, msg = run(["sweep", "--docker-host", address, "--out", str(tmp_path / "out")])
    assert code == 2 and "--docker-host takes" in msg and "\n" not in msg.strip()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["sweep", "net"])
@pytest.mark.parametrize("args, fragment", [
    (["--precision", "70%"], "--precision takes a relative half-width"),
    (["--precision", "five"], "--precision takes a relative half-width"),
    (["--budget", "0.1"], "Invalid value for '--budget'"),
])
def test_precision_and_budget_are_checked_alike_by_sweep_and_net(tmp_path, command, args, fragment):
    code, msg = run([command, "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "out"), *args])
    assert code == 2 and fragment in msg, msg
    assert not (tmp_path / "out").exists() and not (tmp_path / "w").exists()
