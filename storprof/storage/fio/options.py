"""Which fio options a job file may use, and which values: an allowlist, not a list of dangers.

A job file describes an I/O pattern; storprof chooses where it runs. So only the options that
shape the pattern (rw and its mixes, block sizes, queue depth, engine, sync behaviour, sizes,
timing, rates, buffer contents) are accepted, each with a value of the form it allows. Everything
else is refused by name, unless the user lets one through with `--allow-option`; even then the
character rules below hold and fio runs in a sandbox (see sandbox.py).

The alias table is fio 3.33's own (options.c `.alias`, engine options included), so `timeout`
is judged as `runtime`, `readwrite` as `rw`; fio matches option names exactly (strcmp), so no
other spelling reaches an option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# fio 3.33, options.c: alias -> canonical name.
ALIASES = {
    "readwrite": "rw", "iodepth_batch_submit": "iodepth_batch",
    "iodepth_batch_complete": "iodepth_batch_complete_min", "io_limit": "io_size", "fill_fs": "fill_device",
    "fileoffset": "offset", "blocksize": "bs", "blockalign": "ba", "blocksize_range": "bsrange",
    "blocksize_unaligned": "bs_unaligned", "nr_files": "nrfiles", "timeout": "runtime", "iomem": "mem",
    "mem_align": "iomem_align", "ratemin": "rate_min", "ratecycle": "rate_cycle",
    "wait_for_previous": "stonewall", "disable_bw": "disable_bw_measurement", "ss": "steadystate",
    # Not an alias in fio but the same setting inverted: `buffered=1` is `direct=0`.
    "buffered": "direct",
}

# Options storprof itself sets or that act outside the test directory: never allowed, not even
# with --allow-option.
NEVER = {
    "filename": "chooses where fio writes (storprof sets that)",
    "directory": "chooses where fio writes (storprof sets that)",
    "filename_format": "chooses where fio writes (storprof sets that)",
    "opendir": "chooses where fio writes (storprof sets that)",
    "unique_filename": "chooses where fio writes (storprof sets that)",
    "allow_file_create": "chooses where fio writes (storprof sets that)",
    "allow_mounted_write": "writes to block devices",
    "exec_prerun": "runs a command", "exec_postrun": "runs a command",
    "trigger": "runs a command on a trigger", "trigger-file": "runs a command on a trigger",
    "trigger-timeout": "runs a command on a trigger", "trigger-remote": "runs a command on a trigger",
    "include": "pulls in another job file",
    "group_reporting": "changes the statistics storprof reads (storprof sets it)",
}

# Why some well-known options are refused (the rest get a generic reason).
_REFUSED = {
    "reads or writes a file outside the test directory": (
        "write_iolog", "read_iolog", "replay_redirect", "merge_blktrace_file", "write_bw_log", "write_lat_log",
        "write_iops_log", "write_hist_log", "lockfile", "verify_dump", "verify_state_load", "verify_state_save",
        "ioengine=external"),
    "changes host settings or priorities": (
        "ioscheduler", "cgroup", "cgroup_weight", "cgroup_nodelete", "nice", "prio", "prioclass", "uid", "gid",
        "lockmem", "hugepage-size", "numa_cpu_nodes", "numa_mem_policy", "gtod_cpu", "sqthread_poll_cpu",
        "cmdprio", "cmdprio_class", "cmdprio_percentage", "cmdprio_bssplit", "thp"),
    "undoes what storprof forces (CPU pinning)": ("cpumask", "cpus_allowed", "cpus_allowed_policy"),
    "ends a run before the time storprof sets": (
        "io_size", "number_ios", "steadystate", "ss_dur", "ss_ramp", "exitall", "exit_what"),
    "changes the statistics storprof reads": (
        "unified_rw_reporting", "stats", "gtod_reduce", "disable_lat", "disable_clat", "disable_slat",
        "disable_bw_measurement", "clat_percentiles", "lat_percentiles", "slat_percentiles", "percentile_list",
        "significant_figures", "kb_base", "unit_base", "continue_on_error", "ignore_error", "clocksource"),
    "fills the whole filesystem": ("fill_device",),
    "makes fio wait on or talk to other jobs or hosts": (
        "wait_for", "flow", "flow_id", "flow_sleep", "flow_watermark", "profile"),
}
WHY_REFUSED = {name: reason for reason, names in _REFUSED.items() for name in names}

# Bounds: enough for any storage benchmark on one machine, small enough that a job file cannot
# exhaust it (processes, memory, inodes) or run for ever.
MAX_NUMJOBS = 64            # processes (or threads) per job section
MAX_JOB_SECTIONS = 16
MAX_TOTAL_JOBS = 128        # numjobs summed over the sections
MAX_IODEPTH = 1024
MAX_FILES = 100_000         # nrfiles per job
MAX_TOTAL_FILES = 400_000   # nrfiles x numjobs summed over the sections
MAX_BLOCK = 64 << 20        # one block size
MAX_IO_MEMORY = 2 << 30     # block size x iodepth x numjobs: the I/O buffers fio allocates
MAX_FILE_BYTES = 1 << 40    # size, filesize, offset
MAX_SECONDS = 24 * 3600     # runtime, ramp_time, startdelay, thinktime
MAX_JOB_FILE_BYTES = 1 << 20

_SIZE = r"\d+(?:\.\d+)?(?:[kmgtpKMGTP](?:i?[bB])?|[bB])?"
_TIME = r"\d+(?:\.\d+)?(?:us|ms|s|m|h|d)?"
_SIZE_RE = re.compile(rf"({_SIZE})")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Rule:
    """What values one option takes: a regular expression for the form, and numeric bounds."""

    pattern: str
    low: float | None = None
    high: float | None = None
    unit: str = ""               # "bytes" or "seconds": how bounds read the value
    bare: bool = False           # a bare flag (`time_based`) is allowed

    def why_not(self, value: str | None) -> str | None:
        if value is None:
            return None if self.bare else "needs a value"
        if not re.fullmatch(self.pattern, value):
            return "is not a value this option takes here"
        if self.low is None and self.high is None:
            return None
        for number in numbers(value, self.unit):
            if self.low is not None and number < self.low:
                return f"is below the smallest allowed ({self.low:g}{_unit(self.unit)})"
            if self.high is not None and number > self.high:
                return f"is above the largest allowed ({_fmt_bound(self.high, self.unit)})"
        return None


def _unit(unit: str) -> str:
    return {"bytes": " bytes", "seconds": " s"}.get(unit, "")


def _fmt_bound(value: float, unit: str) -> str:
    if unit == "bytes":
        for suffix, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= scale:
                return f"{value / scale:g} {suffix}"
    return f"{value:g}{_unit(unit)}"


def size_bytes(text: str) -> int | None:
    """Bytes in one fio size ('4k', '1m', '1MiB', '512'; k = 1024, fio's default kb_base)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*", text, re.IGNORECASE)
    if not match:
        return None
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** " kmgtp".index(prefix.lower() or " "))


def time_seconds(text: str, default_unit: str = "s") -> float | None:
    """Seconds in one fio time ('20', '500ms', '2m'); fio reads a bare number as seconds here."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?", text.strip())
    if not match:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or default_unit]
    return float(match.group(1)) * scale


def numbers(value: str, unit: str) -> list[float]:
    """Every number in a value, read in its unit (sizes in bytes, times in seconds)."""
    if unit == "bytes":
        sizes = (size_bytes(m) for m in _SIZE_RE.findall(value))
        return [float(b) for b in sizes if b is not None]
    if unit == "seconds":
        return [time_seconds(m) or 0.0 for m in re.findall(_TIME, value)]
    return [float(m) for m in re.findall(r"\d+(?:\.\d+)?", value)]


def _int(low: int, high: int) -> Rule:
    return Rule(r"\d{1,12}", low, high)


def _bool() -> Rule:
    return Rule(r"[01]", bare=True)


def _choice(*values: str, param: str | None = None) -> Rule:
    alts = "|".join(re.escape(v) for v in values)
    return Rule(rf"(?:{alts})" + (rf"(?::{param})?" if param else ""))


_SIZES = rf"(?:{_SIZE})?(?:,(?:{_SIZE})?){{0,2}}"                 # bs=4k or bs=4k,64k (read,write,trim)
_RANGE = rf"{_SIZE}[-:]{_SIZE}"
_SPLIT = rf"{_SIZE}/\d{{0,3}}(?::{_SIZE}/\d{{0,3}})*"
# A buffer or verify pattern: hex or decimal numbers, double-quoted text, and %o (the offset).
# Single quotes are refused: fio reads '...' as a file name, as root, already while parsing.
_PATTERN = r'(?:0[xX][0-9a-fA-F]{1,128}|-?\d{1,20}|"[A-Za-z0-9 _.,:=+/-]{0,128}"|%o)+'

ENGINES = ("libaio", "io_uring", "sync", "psync", "vsync", "pvsync", "pvsync2", "posixaio", "mmap", "null",
           "filecreate", "filestat", "filedelete", "dircreate", "dirstat", "dirdelete")
# Engines that create, stat or delete many small files of their own instead of doing I/O on one
# data file: storprof gives each run of them a fresh, empty directory.
METADATA_ENGINES = ("filecreate", "filestat", "filedelete", "dircreate", "dirstat", "dirdelete")

ALLOWED: dict[str, Rule] = {
    # what the job is
    "description": Rule(r"[A-Za-z0-9 _.,:()%+/@=-]{0,200}"),
    "name": Rule(NAME.pattern),
    "ioengine": _choice(*ENGINES),
    "rw": _choice("read", "write", "randread", "randwrite", "rw", "readwrite", "randrw", "trimwrite",
                  param=r"\d{1,9}"),
    "rw_sequencer": _choice("sequential", "identical", param=r"\d{1,9}"),
    "rwmixread": _int(0, 100), "rwmixwrite": _int(0, 100),
    "percentage_random": Rule(r"\d{1,3}(?:,\d{1,3}){0,2}", 0, 100),
    # block sizes
    "bs": Rule(_SIZES, 1, MAX_BLOCK, "bytes"), "ba": Rule(_SIZES, 1, MAX_BLOCK, "bytes"),
    "bsrange": Rule(rf"{_RANGE}(?:,{_RANGE}){{0,2}}", 1, MAX_BLOCK, "bytes"),
    "bssplit": Rule(rf"{_SPLIT}(?:,{_SPLIT}){{0,2}}"), "bs_unaligned": _bool(), "bs_is_seq_rand": _bool(),
    # queueing and submission
    "iodepth": _int(1, MAX_IODEPTH), "iodepth_batch": _int(0, MAX_IODEPTH),
    "iodepth_batch_complete_min": _int(0, MAX_IODEPTH), "iodepth_batch_complete_max": _int(0, MAX_IODEPTH),
    "iodepth_low": _int(0, MAX_IODEPTH), "io_submit_mode": _choice("inline", "offload"),
    "serialize_overlap": _bool(), "numjobs": _int(1, MAX_NUMJOBS), "thread": _bool(),
    # files and sizes
    "size": Rule(_SIZE, 1, MAX_FILE_BYTES, "bytes"), "filesize": Rule(_SIZE, 0, MAX_FILE_BYTES, "bytes"),
    "offset": Rule(_SIZE, 0, MAX_FILE_BYTES, "bytes"), "offset_align": Rule(_SIZE, 0, MAX_BLOCK, "bytes"),
    "nrfiles": _int(1, MAX_FILES), "openfiles": _int(1, MAX_FILES),
    "file_service_type": _choice("random", "roundrobin", "sequential", "zipf", "pareto", "normal", "gauss",
                                 param=r"[0-9.]{1,12}"),
    "fallocate": _choice("none", "native", "posix", "keep", "truncate", "0", "1"),
    "fadvise_hint": _choice("0", "1", "sequential", "random"), "create_serialize": _bool(),
    "create_fsync": _bool(), "create_on_open": _bool(), "create_only": _bool(), "pre_read": _bool(),
    "overwrite": _bool(), "file_append": _bool(), "unlink": _bool(), "unlink_each_loop": _bool(),
    "stat_type": _choice("stat", "lstat", "statx"),
    # the page cache and syncing
    "direct": _bool(), "atomic": _bool(), "invalidate": _bool(),
    "sync": _choice("0", "1", "none", "sync", "dsync"), "fsync": _int(0, 1 << 30), "fdatasync": _int(0, 1 << 30),
    "write_barrier": _int(0, 1 << 30), "end_fsync": _bool(), "fsync_on_close": _bool(),
    "sync_file_range": Rule(r"(?:wait_before|write|wait_after)(?::(?:wait_before|write|wait_after)){0,2}(?::\d{1,9})?"),
    # randomness
    "randrepeat": _bool(), "allrandrepeat": _bool(), "randseed": _int(0, 2**63), "norandommap": _bool(),
    "softrandommap": _bool(), "random_generator": _choice("tausworthe", "lfsr", "tausworthe64"),
    "random_distribution": _choice("random", "zipf", "pareto", "normal", "gauss", "zoned", "zoned_abs",
                                   param=r"[0-9.:/,%]{1,64}"),
    # time
    "runtime": Rule(_TIME, 0, MAX_SECONDS, "seconds"), "time_based": _bool(),
    "ramp_time": Rule(_TIME, 0, MAX_SECONDS, "seconds"), "startdelay": Rule(_TIME, 0, MAX_SECONDS, "seconds"),
    "loops": _int(1, 1000), "stonewall": _bool(), "new_group": _bool(),
    "thinktime": Rule(_TIME, 0, MAX_SECONDS, "seconds"), "thinktime_spin": Rule(_TIME, 0, MAX_SECONDS, "seconds"),
    "thinktime_blocks": _int(0, 1 << 30), "thinktime_blocks_type": _choice("complete", "issue"),
    "thinktime_iotime": Rule(_TIME, 0, MAX_SECONDS, "seconds"),
    # rates and latency targets
    "rate": Rule(_SIZES), "rate_min": Rule(_SIZES), "rate_iops": Rule(r"\d{1,12}(?:,\d{0,12}){0,2}"),
    "rate_iops_min": Rule(r"\d{1,12}(?:,\d{0,12}){0,2}"), "rate_process": _choice("linear", "poisson"),
    "rate_cycle": _int(1, 3_600_000), "rate_ignore_thinktime": _bool(),
    "max_latency": Rule(_TIME), "latency_target": Rule(_TIME), "latency_window": Rule(_TIME),
    "latency_percentile": Rule(r"\d{1,3}(?:\.\d{1,6})?", 0, 100), "latency_run": _bool(),
    # buffers and what is written
    "mem": _choice("malloc", "shm", "mmap", "mmapshared"), "iomem_align": _int(0, MAX_BLOCK),
    "zero_buffers": _bool(), "refill_buffers": _bool(), "scramble_buffers": _bool(),
    "buffer_pattern": Rule(_PATTERN), "buffer_compress_percentage": _int(0, 100),
    "buffer_compress_chunk": Rule(_SIZE, 0, MAX_BLOCK, "bytes"), "dedupe_percentage": _int(0, 100),
    "dedupe_mode": _choice("repeat", "working_set"), "dedupe_working_set_percentage": _int(0, 100),
    "dedupe_global": _bool(),
    # verification (in memory; its state files are refused above)
    "verify": _choice("0", "md5", "crc64", "crc32c", "crc32c-intel", "crc32", "crc16", "crc7", "xxhash",
                      "sha512", "sha256", "sha1", "sha3-224", "sha3-256", "sha3-384", "sha3-512", "meta",
                      "pattern", "null"),
    "do_verify": _bool(), "verify_interval": Rule(_SIZE, 0, MAX_BLOCK, "bytes"),
    "verify_offset": Rule(_SIZE, 0, MAX_BLOCK, "bytes"), "verify_pattern": Rule(_PATTERN),
    "verify_fatal": _bool(), "verify_backlog": _int(0, 1 << 30), "verify_backlog_batch": _int(0, 1 << 30),
    "verify_async": _int(0, 16), "verify_only": _bool(), "experimental_verify": _bool(),
    # engine options (libaio, io_uring, pvsync2)
    "userspace_reap": _bool(), "hipri": _bool(), "hipri_percentage": _int(0, 100), "fixedbufs": _bool(),
    "registerfiles": _bool(), "sqthread_poll": _bool(), "nonvectored": _bool(), "uncached": _bool(),
    "nowait": _bool(), "force_async": _int(0, 1 << 20),
}

# Characters a job file may hold outside comments. `$` is refused everywhere: fio expands
# `${VAR}` from the environment and `$mb_memory`-style keywords (then pipes the value to bc)
# after storprof has read the literal text. Quotes are refused but in patterns (see _PATTERN).
SAFE_LINE = re.compile(r"[A-Za-z0-9 \t_.,:;#=%+/@()\[\]\"-]*")


def canonical(key: str) -> str:
    """The option fio means by this name."""
    return ALIASES.get(key, key)


def why_refused(key: str, value: str | None, allowed_extra: frozenset[str] = frozenset()) -> str | None:
    """Why one option is not allowed, or None; `allowed_extra` are --allow-option names."""
    name = canonical(key)
    spelled = f"'{key}'" + ("" if name == key else f" (fio's {'inverse' if key == 'buffered' else 'alias'} of {name})")
    if name in NEVER:
        return f"option {spelled} {NEVER[name]}"
    if name == "ioengine" and value and value.startswith("external"):
        return f"option 'ioengine={value}' loads a library ({WHY_REFUSED['ioengine=external']})"
    if name in allowed_extra:
        return None
    rule = ALLOWED.get(name)
    if rule is None:
        reason = WHY_REFUSED.get(name, "is not one storprof knows to only shape the I/O pattern")
        return f"option {spelled} {reason} (an expert may pass --allow-option {name})"
    problem = rule.why_not(value)
    if problem:
        if name == "ioengine":
            return f"option 'ioengine={value}' is not a plain file engine (allowed: {', '.join(ENGINES)})"
        shown = key if value is None else f"{key}={value}"
        alias = "" if name == key else f" (fio's {'inverse' if key == 'buffered' else 'alias'} of {name})"
        return f"option '{shown}'{alias} {problem}"
    return None


def refusable_by_flag(name: str) -> str | None:
    """Why `--allow-option NAME` cannot let NAME through, or None when it can."""
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_-]{0,63}", name):
        return f"--allow-option takes a fio option name, got {name!r}"
    if canonical(name) in NEVER:
        return f"--allow-option {name}: the option {NEVER[canonical(name)]}; storprof never allows it"
    return None
