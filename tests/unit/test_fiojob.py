"""fio job files: parsing, rendering, overrides and the refusal of hostile options."""

import os
import shutil
from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.storage.fio import check as fiocheck
from storprof.storage.fio import job as fiojob
from storprof.storage.fio.check import check_with_fio, validate
from storprof.storage.fio.fiojob import FioJob, parse_size
from storprof.storage.fio.job import JOBS_DIR, builtin_job_names, load_job, parse_job
from storprof.storage.fio.placements import fio_argv
from tests.conftest import setup_provides

DATA_JOBS = ["fsync-write-4k", "lower-randread-4k", "lower-seqread-1m", "randread-4k", "randrw-4k-70-30",
             "randwrite-4k", "seqread-1m", "seqwrite-1m"]
META_JOBS = ["meta-create", "meta-delete"]
BUILTINS = sorted(DATA_JOBS + META_JOBS)

SIMPLE = """\
; Random reads, for testing.
[global]
ioengine=libaio
direct=1
size=1g

# a comment between sections
[myjob]
rw=randread
bs=4k
time_based
bs=8k
"""


def write(tmp_path: Path, text: str, name: str = "myjob.fio") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- parsing -------------------------------------------------------------------------------------

def test_parse_keeps_order_duplicates_and_bare_flags():
    job = parse_job(SIMPLE, "jobs/myjob.fio")
    assert job.name == "myjob"
    assert job.source == Path("jobs/myjob.fio")
    assert job.description == "Random reads, for testing."
    assert job.sections == (
        ("global", (("ioengine", "libaio"), ("direct", "1"), ("size", "1g"))),
        ("myjob", (("rw", "randread"), ("bs", "4k"), ("time_based", None), ("bs", "8k"))),
    )


def test_parse_strips_whitespace_and_trailing_comments_like_fio():
    # fio cuts every line at the first ';' or '#', and ignores blanks around '='.
    job = parse_job("[global]\n  bs = 8k ; comment\n[j]\nsize=8m # hash\nrw=read;x\n", "x.fio")
    assert job.sections == (("global", (("bs", "8k"),)), ("j", (("size", "8m"), ("rw", "read"))))


@pytest.mark.parametrize("text, line, fragment", [
    ("rw=read\n[j]\n", 1, "comes before the first [section]"),
    ("; only a comment\n\nbs=4k\n[j]\n", 3, "comes before the first [section]"),
    ("[global]\n[j]\nrw=read\nthis is not an option\n", 4,
     "expected 'key=value' or '[section]', got 'this is not an option'"),
    ("[global]\n[j\n", 2, "expected 'key=value' or '[section]'"),
    ("[global]\n[j]\n=4k\n", 3, "expected 'key=value' or '[section]'"),
    ("[global]\n[]\n", 2, "empty section name"),
    ("", 1, "empty job file"),
    ("; just a comment\n\n", 1, "empty job file"),
    ("[global]\nrw=read\nbs=4k\n", 1, "no job section besides [global]"),
])
def test_malformed_files_name_file_and_line(text, line, fragment):
    with pytest.raises(UserError) as err:
        parse_job(text, "jobs/x.fio")
    assert str(err.value).startswith(f"jobs/x.fio:{line}: ")
    assert fragment in str(err.value)


# --- built-in jobs ---------------------------------------------------------------------------------

def test_builtin_job_names_are_the_shipped_files():
    assert builtin_job_names() == BUILTINS
    # Package data: storprof/jobs, so a non-editable install has them too.
    assert JOBS_DIR.name == "jobs" and JOBS_DIR.is_dir()
    assert JOBS_DIR.parent == Path(fiojob.__file__).resolve().parent


@pytest.mark.parametrize("name", DATA_JOBS)
def test_builtin_jobs_load_and_describe_themselves(name):
    job = load_job(name)
    assert job.name == name
    assert job.source == JOBS_DIR / f"{name}.fio"
    assert job.description, "each built-in job starts with a comment saying what it models"
    assert [s for s, _ in job.sections] == ["global", name]
    assert job.option("size") == "1g"
    assert job.option("runtime") == "20"
    assert job.option("time_based") == ""
    assert job.option("ramp_time") == "2"
    assert job.option("directory") is None and job.option("filename") is None


@pytest.mark.parametrize("name, engine, rw, bs, iodepth, direct, metric", [
    ("randread-4k", "libaio", "randread", "4k", "16", True, "iops"),
    ("randwrite-4k", "libaio", "randwrite", "4k", "16", True, "iops"),
    ("seqread-1m", "libaio", "read", "1m", "4", True, "bw"),
    ("seqwrite-1m", "libaio", "write", "1m", "4", True, "bw"),
    ("randrw-4k-70-30", "libaio", "randrw", "4k", "16", True, "iops"),
    ("fsync-write-4k", "sync", "write", "4k", "1", False, "iops"),
])
def test_builtin_job_settings(name, engine, rw, bs, iodepth, direct, metric):
    job = load_job(name)
    assert job.option("ioengine") == engine
    assert job.option("rw") == rw
    assert job.option("bs") == bs
    assert job.option("iodepth") == iodepth
    assert job.direct is direct
    assert job.primary_metric == metric


def test_fsync_and_mix_details():
    assert load_job("fsync-write-4k").option("fsync") == "1"
    assert load_job("randrw-4k-70-30").option("rwmixread") == "70"


def test_unknown_builtin_lists_the_builtins():
    with pytest.raises(UserError) as err:
        load_job("randread-8k")
    assert "randread-8k" in str(err.value)
    for name in BUILTINS:
        assert name in str(err.value)


def test_missing_user_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_job(str(tmp_path / "nope.fio"))


def test_load_user_file_by_path(tmp_path):
    path = write(tmp_path, SIMPLE)
    job = load_job(str(path))
    assert job.name == "myjob" and job.source == path


def test_load_job_from_another_jobs_dir(tmp_path):
    write(tmp_path, SIMPLE, "custom.fio")
    assert builtin_job_names(tmp_path) == ["custom"]
    assert load_job("custom", jobs_dir=tmp_path).sections == parse_job(SIMPLE, "custom.fio").sections


# --- option lookup, direct, primary metric ---------------------------------------------------------

def test_option_prefers_job_section_and_last_duplicate():
    job = parse_job(SIMPLE, "myjob.fio")
    assert job.option("bs") == "8k"
    assert job.option("size") == "1g"
    assert job.option("time_based") == ""
    assert job.option("iodepth") is None


def test_option_reads_only_the_first_job_section():
    job = parse_job("[global]\nbs=4k\n[a]\nrw=read\n[b]\nrw=write\nbs=1m\n", "two.fio")
    assert job.option("rw") == "read"
    assert job.option("bs") == "4k"


@pytest.mark.parametrize("body, expected", [
    ("direct=1", True), ("direct=0", False), ("direct", True), ("buffered=0", True),
    ("buffered=1", False), ("", False),
])
def test_direct(body, expected):
    assert parse_job(f"[global]\n[j]\n{body}\n", "j.fio").direct is expected


@pytest.mark.parametrize("bs, metric", [
    ("4k", "iops"), ("63k", "iops"), ("64k", "bw"), ("128k", "bw"), ("1m", "bw"), ("1MiB", "bw"),
    ("4k,1m", "bw"), ("4k-128k", "bw"), ("65536", "bw"), ("512", "iops"),
])
def test_primary_metric_by_block_size(bs, metric):
    assert parse_job(f"[global]\nbs={bs}\n[j]\n", "j.fio").primary_metric == metric


def test_primary_metric_defaults_to_iops_without_bs_and_reads_blocksize_alias():
    assert parse_job("[j]\nrw=read\n", "j.fio").primary_metric == "iops"
    assert parse_job("[j]\nblocksize=256k\n", "j.fio").primary_metric == "bw"


def test_parse_size():
    assert parse_size("4k") == 4096
    assert parse_size("1m") == 1 << 20
    assert parse_size("1g") == 1 << 30
    assert parse_size("2KiB") == 2048
    assert parse_size("512") == 512
    assert parse_size("lots") is None


# --- overrides and rendering -----------------------------------------------------------------------

def test_with_overrides_forces_global_and_removes_from_job_sections():
    job = parse_job("[global]\nsize=1g\nruntime=20\n[j]\nsize=4g\ndirect=0\nruntime=5\nrw=read\n", "j.fio")
    forced = job.with_overrides(size="32m", runtime=2, ramp_time=0.5, direct=True)
    assert forced.sections == (
        ("global", (("size", "32m"), ("runtime", "2"), ("time_based", None), ("ramp_time", "500ms"),
                    ("direct", "1"))),
        ("j", (("rw", "read"),)),
    )
    assert forced.option("size") == "32m"
    assert forced.direct is True
    assert job.option("size") == "4g", "the original job is unchanged"


def test_with_overrides_adds_global_when_missing_and_none_changes_nothing():
    job = parse_job("[j]\nrw=read\n", "j.fio")
    assert job.with_overrides() == job
    forced = job.with_overrides(direct=False)
    assert forced.sections == (("global", (("direct", "0"),)), ("j", (("rw", "read"),)))
    assert forced.direct is False


def test_with_overrides_runtime_replaces_time_based_everywhere():
    job = parse_job("[global]\ntime_based=0\n[j]\ntime_based\nrw=read\n", "j.fio")
    forced = job.with_overrides(runtime=20)
    assert forced.sections == (("global", (("runtime", "20"), ("time_based", None))), ("j", (("rw", "read"),)))


@pytest.mark.parametrize("kwargs", [dict(size="1g\nexec_prerun=x"), dict(size="1g;x"), dict(size=""),
                                    dict(runtime=-1), dict(ramp_time=-0.5)])
def test_bad_override_values_are_refused(kwargs):
    with pytest.raises(UserError):
        parse_job(SIMPLE, "myjob.fio").with_overrides(**kwargs)


def test_render_adds_target_and_group_reporting_and_keeps_everything_else():
    job = parse_job(SIMPLE, "jobs/myjob.fio")
    text = job.render("/var/lib/storprof/run1", "myjob.dat")
    again = parse_job(text, "rendered.fio")
    assert job.description and again.description == ""     # metadata, not text fio reads
    assert again.sections == (
        ("global", job.sections[0][1] + (("directory", "/var/lib/storprof/run1"), ("filename", "myjob.dat"),
                                          ("group_reporting", "1"))),
        job.sections[1],
    )
    assert "time_based\n" in text and "bs=4k\n" in text and "bs=8k\n" in text


def test_render_overrides_group_reporting_from_a_job_section():
    job = parse_job("[global]\n[j]\ngroup_reporting=0\nrw=read\n", "j.fio")
    again = parse_job(job.render("/d", "f"), "r.fio")
    assert again.sections[1] == ("j", (("rw", "read"),))
    assert again.option("group_reporting") == "1"


def test_render_round_trip_of_every_builtin():
    for name in BUILTINS:
        job = load_job(name).with_overrides(size="32m", runtime=2)
        again = parse_job(job.render("/data", f"{name}.dat"), f"{name}.fio")
        assert again.sections[1] == job.sections[1]
        assert again.sections[0][1][: len(job.sections[0][1])] == job.sections[0][1]
        assert again.option("directory") == "/data" and again.option("filename") == f"{name}.dat"


@pytest.mark.parametrize("directory, filename", [("/a:b", "f"), ("/d", "x;y"), ("/d", ""), ("/d\n", "f")])
def test_render_refuses_targets_fio_would_misread(directory, filename):
    with pytest.raises(UserError):
        parse_job(SIMPLE, "myjob.fio").render(directory, filename)


def test_fio_argv():
    assert fio_argv("/run/job.fio") == ["fio", "--clocksource=clock_gettime", "--output-format=json", "/run/job.fio"]


# --- safety validation (every attack class in detail: test_fio_check.py) --------------------------

HOSTILE = [
    ("filename=/dev/sda", "filename", "chooses where fio writes"),
    ("directory=/etc", "directory", "chooses where fio writes"),
    ("filename_format=x.jobnum", "filename_format", "chooses where fio writes"),
    ("opendir=/home", "opendir", "chooses where fio writes"),
    ("exec_prerun=rm -rf /", "exec_prerun", "runs a command"),
    ("exec_postrun=/bin/true", "exec_postrun", "runs a command"),
    ("ioengine=exec", "ioengine=exec", "not a plain file engine"),
    ("ioengine=net", "ioengine=net", "not a plain file engine"),
    ("ioengine=rbd", "ioengine=rbd", "not a plain file engine"),
    ("ioengine=sg", "ioengine=sg", "not a plain file engine"),
    ("ioengine=io_uring_cmd", "ioengine=io_uring_cmd", "not a plain file engine"),
    ("ioengine=external:/tmp/evil.so", "ioengine=external:/tmp/evil.so", "loads a library"),
    ("write_iolog=trace", "write_iolog", "file outside the test directory"),
    ("read_iolog=trace", "read_iolog", "file outside the test directory"),
    ("write_bw_log=bw", "write_bw_log", "file outside the test directory"),
    ("replay_redirect=/dev/sdb", "replay_redirect", "file outside the test directory"),
    ("trigger=reboot", "trigger", "runs a command"),
    ("trigger-file=/tmp/t", "trigger-file", "runs a command"),
    ("ioscheduler=none", "ioscheduler", "changes host settings"),
    ("cgroup=x", "cgroup", "changes host settings"),
    ("mem=mmaphuge:/hugetlbfs/buf", "mem=mmaphuge:/hugetlbfs/buf", "not a value this option takes"),
    ("name=../../escape", "name=../../escape", "not a value this option takes"),
    ("unified_rw_reporting=1", "unified_rw_reporting", "changes the statistics"),
    ("percentile_list=50", "percentile_list", "changes the statistics"),
]


@pytest.mark.parametrize("line, option, reason", HOSTILE)
@pytest.mark.parametrize("section", ["global", "myjob"])
def test_every_hostile_option_is_refused_with_file_and_line(tmp_path, line, option, reason, section):
    text = "; a job\n[global]\nsize=1g\n[myjob]\nrw=read\n"
    lines = text.splitlines()
    at = lines.index(f"[{section}]") + 2      # 1-based line just after the section header
    lines.insert(at - 1, line)
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(UserError) as err:
        load_job(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}:{at}: option ")
    assert option in message and reason in message
    assert message.endswith("storprof does not allow it")


@pytest.mark.parametrize("line", ["include other.fio", "include /etc/fio/x.fio", "includefoo"])
def test_include_is_refused(tmp_path, line):
    # fio treats any line starting with "include" as an include, even without a space.
    path = write(tmp_path, f"[global]\n{line}\n[j]\nrw=read\n")
    with pytest.raises(UserError, match=rf"^{path}:2: 'include' pulls in another job file"):
        load_job(str(path))


@pytest.mark.parametrize("engine", fiocheck.ALLOWED_ENGINES)
def test_allowed_engines_pass(engine):
    validate(parse_job(f"[global]\nioengine={engine}\n[j]\nrw=read\n", "j.fio"))


def test_ordinary_options_pass():
    validate(parse_job("[global]\nmem=malloc\nnumjobs=4\nrate=10m\nname=db\n"
                       "[j]\nrw=randrw\nrwmixread=70\nverify=crc32c\n", "j.fio"))


def test_message_example_from_the_spec(tmp_path):
    path = write(tmp_path, "[global]\nsize=1g\n[myjob]\nexec_prerun=./setup.sh\n")
    with pytest.raises(UserError) as err:
        load_job(str(path))
    assert str(err.value) == f"{path}:4: option 'exec_prerun' runs a command; storprof does not allow it"


# --- fio's own parser ------------------------------------------------------------------------------

needs_fio = setup_provides(shutil.which("fio") is not None, "fio is not installed")


@needs_fio
@pytest.mark.parametrize("name", BUILTINS)
def test_fio_accepts_every_builtin(name):
    check_with_fio(load_job(name).with_overrides(size="32m", runtime=2, ramp_time=0.5, direct=True))


@needs_fio
def test_fio_rejects_unknown_option_on_one_line():
    job = parse_job("[global]\nbogus_option=3\n[j]\nrw=read\n", "bogus.fio")
    with pytest.raises(UserError) as err:
        check_with_fio(job)
    message = str(err.value)
    assert message.startswith("bogus.fio: fio rejects the job: Bad option <bogus_option=3>")
    assert "\n" not in message and "dropped" not in message


@needs_fio
def test_fio_rejects_bad_value():
    with pytest.raises(UserError, match=r"fio: failed parsing rw=sideways"):
        check_with_fio(parse_job("[j]\nrw=sideways\n", "bad.fio"))


def test_fiojob_is_frozen():
    job = parse_job(SIMPLE, "myjob.fio")
    with pytest.raises(AttributeError):
        job.name = "other"  # type: ignore[misc]
    assert isinstance(job, FioJob)


# --- union workloads: lower-layer reads and metadata jobs ---------------------------------------------

@pytest.mark.parametrize("name", META_JOBS)
def test_metadata_jobs_make_their_own_files_and_ignore_size_and_runtime(name):
    job = load_job(name)
    assert job.own_files and not job.lower_layer
    assert job.description
    forced = job.with_overrides(size="128m", runtime=2, ramp_time=0, direct=True, cpus_allowed="1")
    # A time limit would make filecreate reopen the files it made; a size would change the count.
    assert forced.option("size") is None and forced.option("runtime") is None
    assert forced.option("time_based") is None and forced.option("direct") is None
    assert forced.option("cpus_allowed") == "1"
    text = forced.render("/bench/union/meta-r0")
    assert "directory=/bench/union/meta-r0" in text and "filename" not in text
    check_with_fio(forced)


@pytest.mark.parametrize("name", ["lower-randread-4k", "lower-seqread-1m"])
def test_lower_layer_jobs_carry_the_directive_through_rendering(name):
    job = load_job(name)
    assert job.lower_layer and not job.own_files
    again = parse_job(job.render("/bench/lower", "storprof-1g.dat"), f"{name}.fio")
    assert again.lower_layer and again.directives == ("lower-layer", "placements=host,union,volume")


def test_unknown_directive_names_its_line():
    text = "; about\n; storprof: upper-layer\n[j]\nrw=read\n"
    with pytest.raises(UserError, match=r"^j.fio:2: unknown storprof directive 'upper-layer'"):
        parse_job(text, "j.fio")


@pytest.mark.parametrize("rw", ["write", "randwrite", "rw", "randrw", "trimwrite", "readwrite"])
def test_lower_layer_job_that_writes_is_refused(rw):
    job = parse_job(f"; storprof: lower-layer\n[j]\nrw={rw}\nbs=4k\n", "j.fio")
    with pytest.raises(UserError, match="may only read"):
        validate(job)


def test_lower_layer_metadata_job_is_refused():
    job = parse_job("; storprof: lower-layer\n[j]\nioengine=filestat\nrw=read\n", "j.fio")
    with pytest.raises(UserError, match="makes files of its own"):
        validate(job)


def test_placements_directive_narrows_a_job_and_refuses_unknown_placements():
    job = parse_job("; storprof: placements = host, union\n[j]\nrw=read\n", "j.fio")
    assert job.placements == ("host", "union")
    assert parse_job("[j]\nrw=read\n", "j.fio").placements is None
    with pytest.raises(UserError, match="unknown placement attic"):
        validate(parse_job("; storprof: placements=host,attic\n[j]\nrw=read\n", "j.fio"))


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's symlink needs root")
def test_a_job_file_symlink_another_user_made_is_not_followed(tmp_path):
    """A user hands root a job file that points at a root-only file: refused in one line, and not a
    character of the target reaches the message (the line check would otherwise quote it)."""
    secret = tmp_path / "secret"
    secret.write_text("root-only: $6$hunter2*\n")
    secret.chmod(0o600)
    link = tmp_path / "job.fio"
    link.symlink_to(secret)
    os.lchown(link, 65534, 65534)
    with pytest.raises(UserError) as raised:
        load_job(str(link))
    message = str(raised.value)
    assert "symlink that uid 65534 made" in message and "hunter2" not in message and "\n" not in message
    fifo = tmp_path / "fifo.fio"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is not a regular file"):
        load_job(str(fifo))
    own = tmp_path / "mine.fio"
    own.symlink_to(Path(__file__).parents[2] / "storprof" / "storage" / "fio" / "jobs" / "randread-4k.fio")
    assert load_job(str(own)).name == "mine"          # root's own symlink is followed
