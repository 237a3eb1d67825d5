"""compare on real sweeps: two identical sweeps back to back (an A/A pair) are not called different,
and a sweep made while another fio loads the same disk is called slower (needs root).

compare tests a row against the drift between sessions (each spec is a session), which it measures
from the sweeps' own sessions on one backing filesystem: one spec a sweep would leave every row
"not yet known". So each sweep runs four specs on the host's filesystem (a session each: host and
bind only, so the driver hardly matters), and the A/A sweep is also given to the loaded comparison
as --drift, a third sweep of the same configuration: 9 degrees of freedom. With two specs a sweep
(3 degrees of freedom, a t of 3.18 to pass) a load that halved the host's reads was not called
slower on a day the sessions' host baselines drifted by 29% (CI, 2026-12-03: 0.26x and 0.51x,
p 0.03 and 0.16), so the load is also heavier: the test is that compare finds a slowdown far
beyond the machine's drift, and says "not yet known" of one within it.

Within one sweep, the same injection is seen from the other side: a background load slows the
raw figures of every placement alike, so the within-sweep ratios to host must not call it a
container cost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from storprof.results import ResultSet
from storprof.stats.compare import compare
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

SPECS = ("overlay2", "vfs", "fuse-overlayfs", "overlay2:28.5.2")
ARGS = ["--drivers", ",".join(SPECS), "--jobs", "randread-4k", "--placements", "host,bind", "--size", "32m",
        "--runtime", "0.5", "--ramp-time", "0", "--repeat", "6", "--no-layers", "--quiet"]


def sweep(out: Path, workdir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", *ARGS, "--workdir", str(workdir),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def disk_load(directory: Path) -> subprocess.Popen:
    """Another program reading and writing the same disk: 64 KiB direct random I/O, two jobs of
    32 in flight each."""
    # its own session: fio runs the job in a forked process, which killing fio alone would leave
    # loading the disk for the tests after this one
    return subprocess.Popen(["fio", "--name=load", f"--directory={directory}", "--size=512m", "--rw=randrw",
                             "--bs=64k", "--direct=1", "--ioengine=libaio", "--iodepth=32", "--numjobs=2",
                             "--time_based", "--runtime=600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def called(result, verdicts=("faster", "slower")):
    t = result.table
    return t[t["verdict"].isin(verdicts)]


def test_an_aa_pair_is_not_called_different_and_a_disk_load_is():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    load_dir = Path(tempfile.mkdtemp(prefix="storprof-it-load-"))
    try:
        sweep(out / "a1", workdir)
        sweep(out / "a2", workdir)
        load = disk_load(load_dir)
        try:
            sweep(out / "loaded", workdir)
        finally:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
        a1, a2, loaded = (ResultSet.load(out / n) for n in ("a1", "a2", "loaded"))

        aa = compare(a1, a2)
        assert len(aa.table) >= 5 * len(SPECS)             # iops and p99 of host and bind, the ratio, per spec
        assert aa.table["p_value"].notna().all(), aa.table.to_string()     # two sessions a side: all tested
        # The check: two identical sweeps, at most one row called different. Welch's test on
        # the repeats called 3 of 10 (issue 29); against the drift between sessions none should be.
        assert len(called(aa)) <= 1, called(aa).to_string()

        ab = compare(a1, loaded, drift=[a2])
        hosts = ab.table[(ab.table.placement == "host") & (ab.table.metric == "iops")]
        assert len(hosts) == len(SPECS) and (hosts.drift_df == 3 * (len(SPECS) - 1)).all(), ab.table.to_string()
        assert (hosts.verdict == "slower").all() and (hosts.ratio < 0.9).all(), ab.table.to_string()
        assert (hosts.q_value < 0.05).all()
        ratios = ab.table[ab.table.metric == "ratio to host"]
        # The load slows host and bind alike, so no ratio row is called a container cost. Its size is
        # not pinned: under a load one session's bind ÷ host went to 0.69x (CI, 2026-12-03, not
        # significant against the drift), and a load can lift it too (docs/findings.md, bind ÷ host).
        assert not (ratios.verdict == "slower").any(), ratios.to_string()
        assert not storprof_leftovers(str(workdir))
    finally:
        shutil.rmtree(load_dir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
