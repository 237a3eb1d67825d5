"""What host fio may take: limits sized from the job, never above what the allowlist allows, and
the commands that apply them (that they hold against fio: tests/integration/test_job_limits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storprof.host import limits
from storprof.host.limits import CEILING, FILE_MARGIN, FIO_OVERHEAD, Limits
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.job import builtin_job_names, load_job, parse_job, precondition_job


def test_a_jobs_limits_follow_its_buffers_processes_and_files():
    job = parse_job("[global]\nsize=256m\noffset=16m\n[a]\nbs=1m\niodepth=8\nnumjobs=4\n[b]\nbs=4k\n", "j.fio")
    assert job.limits() == Limits(memory=FIO_OVERHEAD + 2 * 8 * (1 << 20), processes=2 * 5 + limits.PROCESS_MARGIN,
                                  file_size=(272 << 20) + FILE_MARGIN)


def test_the_file_limit_covers_the_largest_section_and_filesize():
    job = parse_job("[global]\nsize=1g\n[a]\nrw=read\n[b]\nrw=read\nsize=2g\n[c]\nfilesize=3g\noffset=1m\n", "j.fio")
    assert job.limits().file_size == (3 << 30) + (1 << 20) + FILE_MARGIN


def test_a_file_append_job_is_bounded_by_the_ceiling_only():
    job = parse_job("[j]\nrw=write\nsize=1g\nfile_append=1\n", "j.fio")
    assert job.limits().file_size == CEILING.file_size


def test_a_metadata_jobs_file_limit_covers_all_its_files():
    job = load_job("meta-create").with_files(3000)
    assert job.limits().file_size == job.bytes_needed() + FILE_MARGIN >= 3000 * 4096


def test_no_job_gets_more_than_the_ceiling():
    greedy = parse_job("[j]\nbs=4g\niodepth=4096\nnumjobs=5000\nsize=100t\n", "j.fio").limits()
    assert greedy == CEILING
    assert CEILING.memory == FIO_OVERHEAD + fiooptions.MAX_IO_MEMORY
    assert CEILING.file_size == 2 * fiooptions.MAX_FILE_BYTES + FILE_MARGIN


@pytest.mark.parametrize("name", builtin_job_names())
def test_every_builtin_jobs_limits_are_well_below_the_ceiling(name):
    job = load_job(name).with_overrides(size="1g", runtime=5)
    got = job.limits()
    assert got.memory <= FIO_OVERHEAD + (64 << 20) and got.processes <= 2 * 8 + limits.PROCESS_MARGIN
    assert job.bytes_needed() + FILE_MARGIN == got.file_size < CEILING.file_size


def test_the_precondition_of_a_data_file_may_write_it_whole():
    assert precondition_job("512m").limits().file_size == (512 << 20) + FILE_MARGIN


def test_prlimit_sets_address_space_file_size_and_processes():
    argv = limits.prlimit_argv(Limits(memory=1 << 30, processes=40, file_size=5 << 20))
    assert Path(argv[0]).name == "prlimit"
    assert argv[1:] == [f"--as={1 << 30}", f"--fsize={5 << 20}", "--nproc=40", "--"]


def test_under_systemd_a_scope_caps_tasks_and_memory(monkeypatch):
    monkeypatch.setattr(limits, "systemd_runs", lambda: True)
    monkeypatch.setattr(limits, "require", lambda name: f"/usr/bin/{name}")
    with limits.confined(Limits(memory=1 << 30, processes=40, file_size=1 << 20)) as (prefix, cgroup):
        assert cgroup is None
        assert prefix[:4] == ["/usr/bin/systemd-run", "--scope", "--quiet", "--collect"]
        assert "TasksMax=40" in prefix and f"MemoryMax={limits.shared_memory_cap()}" in prefix
        assert prefix[prefix.index("--") + 1] == "/usr/bin/prlimit"


def test_without_systemd_a_pids_cgroup_is_made_and_removed(monkeypatch):
    monkeypatch.setattr(limits, "systemd_runs", lambda: False)
    if limits.pids_cgroup_parent() is None:
        pytest.skip("no cgroup v1 pids hierarchy this process may write")
    with limits.confined(Limits(memory=1 << 30, processes=40, file_size=1 << 20)) as (prefix, procs):
        assert Path(prefix[0]).name == "prlimit"
        assert procs is not None and procs.name == "cgroup.procs"
        assert (procs.parent / "pids.max").read_text().strip() == "40"
    assert not procs.parent.exists()


def test_the_shared_memory_cap_is_three_quarters_of_ram_and_at_least_2_gib():
    assert limits.shared_memory_cap() == max(limits.total_memory() * 3 // 4, 2 << 30)
    assert limits.total_memory() > 0


def test_an_empty_cgroup_of_a_storprof_that_is_gone_is_removed_by_the_next_run(monkeypatch):
    monkeypatch.setattr(limits, "systemd_runs", lambda: False)
    parent = limits.pids_cgroup_parent()
    if parent is None:
        pytest.skip("no cgroup v1 pids hierarchy this process may write")
    gone = 4194305          # above pid_max's ceiling: no process has it
    stale = parent / f"storprof-{gone}-0"
    stale.mkdir()
    with limits.confined(Limits(memory=1 << 30, processes=40, file_size=1 << 20)):
        assert not stale.exists()
