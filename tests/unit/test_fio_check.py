"""Job files are input: only options that shape the I/O pattern, with allowed values, within bounds.

One group of tests per attack class of issue 11, then forms no list named: each hostile file is
refused by load_job with one line that names the file, the line and why. What fio would do with
them if they got through is tested against the sandbox in tests/integration/test_job_sandbox.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.check import validate
from storprof.storage.fio.job import load_job, parse_job
from storprof.storage.fio.options import ALIASES, ALLOWED, NEVER, canonical, refusable_by_flag


def refused(tmp_path: Path, text: str, name: str = "job.fio", allow: tuple[str, ...] = ()) -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_job(str(path), allowed_extra=allow)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    return message


def accepted(tmp_path: Path, text: str, allow: tuple[str, ...] = ()):
    path = tmp_path / "job.fio"
    path.write_text(text)
    return load_job(str(path), allowed_extra=allow)


# --- a section name is a path --------------------------------------------------------------------

@pytest.mark.parametrize("header", ["[../../../../../../tmp/x]", "[a/b]", "[/etc/x]", "[.hidden]", "[..]",
                                    "[-rf]", "[ x]", "[x ]", "[" + "a" * 65 + "]"])
def test_section_names_that_are_paths_or_odd_are_refused(tmp_path, header):
    message = refused(tmp_path, f"[global]\nioengine=filecreate\nnrfiles=1\n{header}\nrw=write\n")
    assert ":4: section name" in message


def test_a_header_with_text_after_it_is_not_a_header(tmp_path):
    # fio would read "[x]y" as a section named "x]"; storprof refuses the line.
    assert ":2: expected 'key=value' or '[section]'" in refused(tmp_path, "[global]\n[x]y\nrw=read\n")


@pytest.mark.parametrize("name", ["name=../../x", "name=/tmp/x", "name=a b", "name="])
def test_the_name_option_is_a_plain_name_too(tmp_path, name):
    assert ":4: option 'name" in refused(tmp_path, f"[global]\nioengine=filecreate\n[j]\n{name}\n")


@pytest.mark.parametrize("stem", ["a b", "-rf", ".x", "x$y"])
def test_the_job_file_name_is_a_plain_name(tmp_path, stem):
    message = refused(tmp_path, "[j]\nrw=read\n", name=f"{stem}.fio")
    assert "job name" in message


# --- options that read files ----------------------------------------------------------------------

@pytest.mark.parametrize("line", ["buffer_pattern='/etc/hostname'", "verify_pattern='/etc/shadow'",
                                  "buffer_pattern=0x12'/etc/hostname'"])
def test_quoted_file_patterns_are_refused(tmp_path, line):
    assert ":3: character \"'\"" in refused(tmp_path, f"[global]\nrw=write\n{line}\n[j]\n")


@pytest.mark.parametrize("value", ["0xdeadbeef", '"abcd"', "0xdeadbeef\"abc\"%o", "-12"])
def test_literal_patterns_pass(tmp_path, value):
    accepted(tmp_path, f"[j]\nrw=write\nbuffer_pattern={value}\nverify=pattern\nverify_pattern={value}\n")


@pytest.mark.parametrize("line, fragment", [
    ("mem=mmaphuge:/hugetlbfs/buf", "not a value this option takes"),
    ("iomem=mmapshared:/dev/shm/x", "(fio's alias of mem)"),
    ("ioengine=external:/tmp/evil.so", "loads a library"),
    ("read_iolog=/var/log/syslog", "reads or writes a file outside the test directory"),
    ("lockfile=exclusive", "reads or writes a file outside the test directory"),
    ("verify_state_load=1", "reads or writes a file outside the test directory"),
])
def test_options_that_name_files_are_refused(tmp_path, line, fragment):
    assert fragment in refused(tmp_path, f"[j]\nrw=read\n{line}\n")


# --- environment variables and fio's keywords -------------------------------------------------------

@pytest.mark.parametrize("line", ["size=${HOME}", "bs=$pagesize", "size=$mb_memory", "numjobs=$ncpus",
                                  "description=${PATH}", "[${X}]", "rw=read${IFS}"])
def test_dollar_is_refused_everywhere(tmp_path, line):
    assert "character '$'" in refused(tmp_path, f"[j]\n{line}\n")


def test_dollar_in_a_comment_is_harmless(tmp_path):
    # fio cuts the comment before it expands anything.
    assert accepted(tmp_path, "[j]\nrw=read ; costs ${HOME} nothing\n").option("rw") == "read"


# --- sections and aliases storprof used to read differently from fio ----------------------------------

@pytest.mark.parametrize("header", ["[global2]", "[globalx]", "[global-job]", "[global.x]"])
def test_sections_fio_takes_for_global_are_refused(tmp_path, header):
    assert "would be a [global] section to fio" in refused(tmp_path, f"{header}\nrw=read\n[j]\n")


def test_aliases_are_judged_as_their_option(tmp_path):
    assert "'timeout=99999999' (fio's alias of runtime) is above the largest allowed" in \
        refused(tmp_path, "[j]\ntimeout=99999999\n")
    assert "'cpumask' undoes what storprof forces" in refused(tmp_path, "[j]\ncpumask=3\n")
    assert "'io_limit' (fio's alias of io_size) ends a run before the time storprof sets" in \
        refused(tmp_path, "[j]\nio_limit=1m\n")
    assert "'number_ios' ends a run" in refused(tmp_path, "[j]\nnumber_ios=10\n")
    assert "nr_files" in refused(tmp_path, f"[j]\nnr_files={fiooptions.MAX_FILES + 1}\n")


def test_overrides_remove_aliases_too():
    job = parse_job("[global]\ntimeout=5\nbuffered=1\n[j]\nreadwrite=read\ntimeout=9\n", "j.fio")
    forced = job.with_overrides(runtime=2, direct=True)
    assert forced.option("runtime") == "2" and forced.direct
    keys = [k for _, opts in forced.sections for k, _ in opts]
    assert "timeout" not in keys and "buffered" not in keys


@pytest.mark.parametrize("text, direct", [("buffered=1", False), ("buffered=0", True), ("buffered", False),
                                          ("direct=1", True), ("direct=0", False)])
def test_buffered_is_read_as_the_inverse_of_direct(text, direct):
    assert parse_job(f"[j]\n{text}\n", "j.fio").direct is direct


def test_direct_and_buffered_together_are_refused(tmp_path):
    assert "both 'direct' and 'buffered' set direct" in refused(tmp_path, "[j]\ndirect=1\nbuffered=1\n")


def test_a_global_after_a_job_applies_only_to_later_jobs():
    job = parse_job("[a]\nrw=read\n[global]\nrw=write\n[b]\n", "j.fio")
    assert job.option("rw") == "read"
    assert job.section_option(2, "rw") == "write"


def test_every_alias_of_fio_is_known_and_points_at_an_option_storprof_judges():
    for alias, name in ALIASES.items():
        assert canonical(alias) == name
        assert name in ALLOWED or name in fiooptions.WHY_REFUSED or name in NEVER or name == "direct"


# --- resources ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, fragment", [
    ("prioclass=1", "changes host settings or priorities"),
    ("prio=0", "changes host settings or priorities"),
    ("nice=-20", "changes host settings or priorities"),
    ("lockmem=16g", "changes host settings or priorities"),
    ("numjobs=4096", "above the largest allowed (64)"),
    ("iodepth=100000", "above the largest allowed"),
    ("nrfiles=1000000", "above the largest allowed"),
    ("size=2t", "above the largest allowed (1 TiB)"),
    ("filesize=5t", "above the largest allowed (1 TiB)"),
    ("bs=1g", "above the largest allowed (64 MiB)"),
    ("runtime=30d", "above the largest allowed"),
    ("startdelay=1000000", "above the largest allowed"),
])
def test_resources_are_bounded(tmp_path, line, fragment):
    assert fragment in refused(tmp_path, f"[j]\nrw=read\n{line}\n")


def test_io_buffer_memory_is_bounded(tmp_path):
    message = refused(tmp_path, "[j]\nrw=read\nbs=64m\niodepth=64\n")
    assert ":1: section [j] asks for 4.0 GiB of I/O buffers" in message


def test_processes_and_files_are_bounded_over_all_sections(tmp_path):
    sections = "".join(f"[j{i}]\nnumjobs=64\n" for i in range(3))
    assert "192 fio processes in all" in refused(tmp_path, f"[global]\nrw=read\n{sections}")
    files = "".join(f"[j{i}]\nioengine=filecreate\nnrfiles=100000\nnumjobs=2\n" for i in range(3))
    assert "600000 files in all" in refused(tmp_path, files)
    many = "".join(f"[j{i}]\nrw=read\n" for i in range(fiooptions.MAX_JOB_SECTIONS + 1))
    assert f"{fiooptions.MAX_JOB_SECTIONS + 1} job sections" in refused(tmp_path, many)


def test_metadata_jobs_say_how_much_disk_they_need():
    job = parse_job("[global]\nioengine=filecreate\nfilesize=1m\nnrfiles=100\n[a]\nnumjobs=2\n[b]\n", "m.fio")
    assert job.bytes_needed() == (200 + 100) * 2**20
    small = parse_job("[j]\nioengine=filecreate\nnrfiles=10\n", "m.fio")
    assert small.bytes_needed() == 10 * 4096         # at least a block per file
    data = parse_job("[j]\nrw=read\nsize=1g\noffset=1m\n", "d.fio")
    assert data.bytes_needed() == 2**30 + 2**20


def test_time_limits_follow_the_job():
    timed = parse_job("[j]\nrw=read\nsize=20m\nruntime=10\nramp_time=2\ntime_based\n", "t.fio")
    assert timed.expected_seconds() == 12
    assert timed.time_limit(3600) == pytest.approx(1.5 * 12 + 60 + 1)
    assert timed.time_limit(30) == 30
    sized = parse_job("[j]\nrw=read\nsize=20m\n", "s.fio")
    assert sized.expected_seconds() is None and sized.time_limit(3600) == 3600


# --- forms no list named ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ("[j]\nrw=read\x0bexec_prerun=x\n", "control character"),
    ("[j]\nrw=read\x00\n", "control character"),
    ("[j]\nrw=read\rexec_prerun=x\n", "control character"),
    ("[j]\x0b\nrw=read\n", "control character"),
    ("[j]\ndescription=" + "a" * 1200 + "\n", "line of 1212 characters"),
    ("[j]\nFilename=/etc/passwd\n", "'Filename' is not one storprof knows"),
    ("[j]\nfilename = /etc/passwd\n", "chooses where fio writes"),
    ("[j]\nfilename\n", "chooses where fio writes"),
    ("[j]\nbs=(4*1024)\n", "character '*'"),
    ("[j]\nrw=read`id`\n", "character '`'"),
    ("[j]\nrw=read|x\n", "character '|'"),
    ("[j]\nrw=read\\\n", "character '\\\\'"),
    ("[j]\nrw=réad\n", "character 'é'"),
    ("[j]\nﬁlename=x\n", "character 'ﬁ'"),
    ("[j]\nioengine = exec\n", "not a plain file engine"),
    ("[j]\nioengine=libaio,exec\n", "not a plain file engine"),
    ("[j]\nioengine=sync:x\n", "not a plain file engine"),
    ("[j]\nrw=read:x\n", "not a value this option takes"),
    ("[j]\nsize=50%\n", "not a value this option takes"),
    ("[j]\nsize=-1\n", "not a value this option takes"),
    ("[j]\ndirect=yes\n", "not a value this option takes"),
    ("[j]\nverify_dump=1\n", "reads or writes a file"),
    ("[j]\nverify_state_save=0\n", "reads or writes a file"),
    ("[j]\nexitall\n", "ends a run before"),
    ("[j]\nkb_base=1000\n", "changes the statistics"),
    ("[j]\nsqthread_poll_cpu=1\n", "changes host settings"),
    ("[j]\nwait_for=other\n", "makes fio wait on"),
    ("[j]\nprofile=tiobench\n", "makes fio wait on or talk to"),
    ("[j]\ngroup_reporting=0\n", "storprof sets it"),
    ("[j]\nno_such_option=1\n", "is not one storprof knows"),
    ("[j]\ninclude=x\n", "'include' pulls in another job file"),
    ("[j]\n include /etc/x\n", "'include' pulls in another job file"),
])
def test_hostile_forms_no_list_named(tmp_path, text, fragment):
    message = refused(tmp_path, text)
    assert fragment in message, message


def test_a_crlf_file_reads_like_fio_reads_it(tmp_path):
    assert accepted(tmp_path, "[j]\r\nrw=read\r\nbs=8k\r\n").option("bs") == "8k"


def test_an_oversized_job_file_is_not_read(tmp_path):
    message = refused(tmp_path, "[j]\n" + ";" * (fiooptions.MAX_JOB_FILE_BYTES + 1) + "\n")
    assert "reads job files of at most" in message


def test_a_device_or_directory_is_not_a_job_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_job("/dev/zero.fio")
    (tmp_path / "d.fio").mkdir()
    with pytest.raises(UserError, match="is not a regular file"):
        load_job(str(tmp_path / "d.fio"))


# --- the allowlist in the other direction -------------------------------------------------------------

def test_every_builtin_option_is_on_the_allowlist():
    from storprof.storage.fio.job import builtin_job_names
    for name in builtin_job_names():
        validate(load_job(name))


def test_a_realistic_user_job_passes(tmp_path):
    job = accepted(tmp_path, "; an OLTP-ish mix\n[global]\nioengine=io_uring\ndirect=1\nsize=2g\nruntime=30\n"
                             "time_based\nrandom_distribution=zipf:1.2\nnorandommap\n[oltp]\nrw=randrw\n"
                             "rwmixread=70\nbssplit=4k/60:8k/30:64k/10\niodepth=32\nnumjobs=4\n"
                             "rate_iops=5000\nfixedbufs\n")
    assert job.direct and job.option("bssplit") == "4k/60:8k/30:64k/10"


# --- --allow-option ---------------------------------------------------------------------------------------

def test_allow_option_lets_one_refused_option_through(tmp_path):
    text = "[j]\nrw=read\nexitall\n"
    refused(tmp_path, text)
    assert accepted(tmp_path, text, allow=("exitall",)).option("exitall") == ""


def test_allow_option_names_the_option_by_alias_too(tmp_path):
    assert accepted(tmp_path, "[j]\nrw=read\nio_limit=1g\n", allow=("io_size",))


def test_allow_option_keeps_the_character_rules(tmp_path):
    assert "character '$'" in refused(tmp_path, "[j]\nexitall=${X}\n", allow=("exitall",))


@pytest.mark.parametrize("name", ["filename", "directory", "exec_prerun", "trigger", "group_reporting",
                                  "opendir"])
def test_allow_option_never_allows_what_storprof_sets_or_what_runs_commands(name):
    assert "never allows it" in refusable_by_flag(name)


@pytest.mark.parametrize("name", ["a;b", "", "X", "../x", "a" * 70])
def test_allow_option_takes_an_option_name(name):
    assert "takes a fio option name" in refusable_by_flag(name)


def test_ioengine_external_stays_refused_with_allow_option(tmp_path):
    assert "loads a library" in refused(tmp_path, "[j]\nioengine=external:/x.so\n", allow=("ioengine",))
