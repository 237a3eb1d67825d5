"""fio job files: parse them, refuse the dangerous ones, and render what storprof actually runs.

storprof decides where a job writes (it must be the storage driver under test), so a job file
may describe the I/O pattern but never the target, and it may not run commands or touch other files.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .proc import run

_PACKAGE_DIR = Path(__file__).resolve().parent
# The built-in jobs live in the repo's jobs/; a later packaging may move them inside the package.
JOBS_DIR = next((d for d in (_PACKAGE_DIR / "jobs", _PACKAGE_DIR.parent / "jobs") if d.is_dir()),
                _PACKAGE_DIR.parent / "jobs")

GLOBAL = "global"

Option = tuple[str, "str | None"]          # (key, value); value None for a bare flag like `time_based`
Section = tuple[str, tuple[Option, ...]]  # (section name, options in file order)

# fio's option names: letters, digits, '_' and '-' (hugepage-size, trigger-file).
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SECTION = re.compile(r"\[([^\[\]]*)\]")

# Engines that do plain file I/O on the path storprof gives them.
ALLOWED_ENGINES = ("libaio", "io_uring", "sync", "psync", "vsync", "pvsync", "pvsync2", "posixaio",
                   "mmap", "filecreate", "filestat", "filedelete", "dircreate", "dirstat", "dirdelete",
                   "null")

# Engines that create, stat or delete many small files of their own instead of doing I/O on one
# data file: storprof gives each run of them a fresh, empty directory.
METADATA_ENGINES = ("filecreate", "filestat", "filedelete", "dircreate", "dirstat", "dirdelete")

# What a `; storprof: <directive>` comment in a job file may ask for.
DIRECTIVES = {
    "lower-layer": "on the union placement, read a data file that lives in a lower image layer",
    "placements": "placements=host,union,...: run only on these placements (of those the sweep has)",
}
_DIRECTIVE = re.compile(r"[;#]\s*storprof:\s*(.*)")

_PLACEMENT = {"filename", "directory", "filename_format", "opendir"}
_COMMANDS = {"exec_prerun", "exec_postrun"}
_OTHER_FILES = {"write_iolog", "read_iolog", "read_iolog_chunked", "replay_redirect", "merge_blktrace_file",
                "write_bw_log", "write_lat_log", "write_iops_log", "write_hist_log"}
_HOST_SETTINGS = {"ioscheduler", "cgroup", "cgroup_weight", "cgroup_nodelete"}
# Options that remove or reshape the numbers storprof reads from fio's JSON.
_RESULT_SHAPE = {"unified_rw_reporting", "stats", "gtod_reduce", "disable_clat", "clat_percentiles",
                 "percentile_list"}
# Options whose value may name a file after a colon, e.g. mem=mmaphuge:/hugepages/file.
_FILE_AFTER_COLON = {"mem", "iomem"}


@dataclass(frozen=True)
class FioJob:
    """One parsed job file; immutable so overrides make a new job instead of editing a shared one."""

    name: str
    source: Path
    sections: tuple[Section, ...]
    description: str = ""
    directives: tuple[str, ...] = ()   # from `; storprof: ...` comments, see DIRECTIVES
    # Per section: (header line, line of each option); only used to point error messages at the file.
    line_numbers: tuple[tuple[int, tuple[int, ...]], ...] = field(default=(), compare=False, repr=False)

    def with_overrides(self, size: str | None = None, runtime: float | None = None,
                       ramp_time: float | None = None, direct: bool | None = None,
                       cpus_allowed: str | None = None) -> FioJob:
        """The same job with the sweep's settings forced in [global], so no job section can undo them.

        A metadata job (own_files) keeps its own file count and ignores size, runtime and direct:
        a time limit would make filecreate reopen files it already made, measuring opens.
        """
        if self.own_files:
            size = runtime = ramp_time = direct = None
        forced: list[Option] = []
        if size is not None:
            forced.append(("size", _plain_value("size", size)))
        if runtime is not None:
            forced.append(("runtime", _seconds("runtime", runtime)))
            forced.append(("time_based", None))
        if ramp_time is not None:
            forced.append(("ramp_time", _seconds("ramp_time", ramp_time)))
        if direct is not None:
            forced.append(("direct", "1" if direct else "0"))
        if cpus_allowed is not None:
            forced.append(("cpus_allowed", _plain_value("cpus_allowed", cpus_allowed)))
        return self._with_global(forced)

    def render(self, directory: str, filename: str | None = None) -> str:
        """The job text storprof runs: the file's options plus the target and group reporting.
        Without a filename fio names its own files in `directory` (metadata jobs)."""
        target = [("directory", directory)] + ([("filename", filename)] if filename is not None else [])
        for key, value in target:
            if not value or any(c in value for c in ":;#\n\r"):
                raise UserError(f"{self.source}: cannot use {key} {value!r} for fio "
                                "(fio reads ':' as a list separator and ';' or '#' as a comment)")
        job = self._with_global(target + [("group_reporting", "1")])
        lines = [f"; {self.description}"] if self.description else []
        lines += [f"; storprof: {d}" for d in self.directives]
        for name, options in job.sections:
            if lines:
                lines.append("")
            lines.append(f"[{name}]")
            lines.extend(key if value is None else f"{key}={value}" for key, value in options)
        return "\n".join(lines) + "\n"

    def option(self, key: str) -> str | None:
        """Effective value of an option for the (first) job: its own section over [global].

        A bare flag such as `time_based` gives "", an absent option None.
        """
        value = None
        job_seen = False
        for name, options in self.sections:
            if name != GLOBAL:
                if job_seen:
                    break
                job_seen = True
            for k, v in options:
                if k == key:
                    value = "" if v is None else v
        return value

    @property
    def direct(self) -> bool:
        """Whether the job bypasses the page cache (direct=1, or buffered=0)."""
        direct = self.option("direct")
        if direct is not None:
            return _flag(direct)
        buffered = self.option("buffered")
        return buffered is not None and not _flag(buffered)

    @property
    def own_files(self) -> bool:
        """A metadata job: fio makes, stats or deletes many small files of its own naming."""
        return (self.option("ioengine") or "").strip() in METADATA_ENGINES

    @property
    def placements(self) -> tuple[str, ...] | None:
        """The placements the job asks for (`; storprof: placements=...`), or None for all."""
        for d in self.directives:
            if d.startswith("placements="):
                return tuple(d.split("=", 1)[1].split(","))
        return None

    @property
    def lower_layer(self) -> bool:
        """On the union placement, the job reads a file in a lower image layer, not the top one."""
        return "lower-layer" in self.directives

    @property
    def primary_metric(self) -> str:
        """"bw" for large-block jobs where throughput matters, "iops" for small-block ones."""
        bs = self.option("bs") or self.option("blocksize") or "4k"
        sizes = [parse_size(part) for part in re.split(r"[,:-]", bs) if part.strip()]
        sizes = [s for s in sizes if s is not None]
        return "bw" if sizes and max(sizes) >= 64 * 1024 else "iops"

    def _with_global(self, forced: list[Option]) -> FioJob:
        """Put options into the first [global] (adding one if needed) and drop them from other sections."""
        if not forced:
            return self
        keys = {k for k, _ in forced}
        sections = list(self.sections)
        lines = list(self.line_numbers) or [(0, tuple(0 for _ in opts)) for _, opts in sections]
        if not sections or sections[0][0] != GLOBAL:
            sections.insert(0, (GLOBAL, ()))
            lines.insert(0, (0, ()))
        new_sections: list[Section] = []
        new_lines: list[tuple[int, tuple[int, ...]]] = []
        for index, ((name, options), (header, option_lines)) in enumerate(zip(sections, lines)):
            kept = [(o, n) for o, n in zip(options, option_lines) if o[0] not in keys]
            if index == 0:
                kept += [(o, 0) for o in forced]
            new_sections.append((name, tuple(o for o, _ in kept)))
            new_lines.append((header, tuple(n for _, n in kept)))
        return FioJob(self.name, self.source, tuple(new_sections), self.description, self.directives,
                      tuple(new_lines))


def parse_job(text: str, source: Path | str) -> FioJob:
    """Parse fio's INI-like job format, keeping order and duplicate keys; the name is the file stem."""
    source = Path(source)
    sections: list[tuple[str, list[Option]]] = []
    lines: list[tuple[int, list[int]]] = []
    description = ""
    directives: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        directive = _DIRECTIVE.fullmatch(stripped)
        if directive:
            name = directive.group(1).strip()
            if name.split("=", 1)[0].strip() == "placements":
                name = "placements=" + ",".join(p.strip() for p in name.split("=", 1)[-1].split(",") if p.strip())
            elif name not in DIRECTIVES:
                known = ", ".join(f"{k} ({v})" for k, v in DIRECTIVES.items())
                raise UserError(f"{source}:{number}: unknown storprof directive {name!r}; known: {known}")
            directives.append(name)
            continue
        if stripped[:1] in (";", "#"):
            if not description and not sections:
                description = stripped.lstrip(";#").strip()
            continue
        # fio cuts a line at the first ';' or '#', wherever it is, so a value can never contain them.
        line = re.split(r"[;#]", stripped, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            # fio treats every line starting with "include" as an include of another job file.
            raise UserError(f"{source}:{number}: 'include' pulls in another job file; "
                            "storprof does not allow it")
        header = _SECTION.fullmatch(line)
        if header:
            name = header.group(1).strip()
            if not name:
                raise UserError(f"{source}:{number}: empty section name '[]'")
            sections.append((name, []))
            lines.append((number, []))
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise UserError(f"{source}:{number}: expected 'key=value' or '[section]', got {raw.strip()!r}")
        if not sections:
            raise UserError(f"{source}:{number}: option {key!r} comes before the first [section]")
        sections[-1][1].append((key, value.strip() if eq else None))
        lines[-1][1].append(number)
    if not sections:
        raise UserError(f"{source}:1: empty job file; expected a [global] and a job [section]")
    if all(name == GLOBAL for name, _ in sections):
        raise UserError(f"{source}:{lines[0][0]}: no job section besides [global]; "
                        f"add one such as [{source.stem or 'job'}]")
    return FioJob(
        name=source.stem,
        source=source,
        sections=tuple((name, tuple(options)) for name, options in sections),
        description=description,
        directives=tuple(directives),
        line_numbers=tuple((header, tuple(option_lines)) for header, option_lines in lines),
    )


def validate(job: FioJob) -> None:
    """Refuse a job that chooses its target, runs commands, touches other files or changes the host."""
    from .placements import PLACEMENTS     # here: placements imports this module
    unknown = [p for p in (job.placements or ()) if p not in PLACEMENTS]
    if job.placements is not None and (unknown or not job.placements):
        raise UserError(f"{job.source}: unknown placement {', '.join(unknown) or '(none)'} in the "
                        f"placements directive; choose from {', '.join(PLACEMENTS)}")
    if job.lower_layer and job.own_files:
        raise UserError(f"{job.source}: a lower-layer job reads one data file; "
                        f"ioengine={job.option('ioengine')} makes files of its own")
    if job.lower_layer and _writes(job):
        raise UserError(f"{job.source}: a lower-layer job may only read (rw={job.option('rw')}): "
                        "a write would copy the file up to the top layer")
    line_numbers = job.line_numbers or tuple((0, tuple(0 for _ in opts)) for _, opts in job.sections)
    for (_, options), (_, option_lines) in zip(job.sections, line_numbers):
        for (key, value), number in zip(options, option_lines):
            problem = _why_refused(key, value)
            if problem:
                where = f"{job.source}:{number}" if number else str(job.source)
                raise UserError(f"{where}: {problem}; storprof does not allow it")


def _why_refused(key: str, value: str | None) -> str | None:
    """What is wrong with one option, or None when it is harmless."""
    value = value or ""
    if key in _PLACEMENT:
        return f"option {key!r} chooses where fio writes (storprof sets that)"
    if key in _COMMANDS:
        return f"option {key!r} runs a command"
    if key.startswith("trigger"):
        return f"option {key!r} runs a command on a trigger"
    if key in _OTHER_FILES:
        return f"option {key!r} reads or writes a file outside the test directory"
    if key in _HOST_SETTINGS:
        return f"option {key!r} changes host settings"
    if key in _RESULT_SHAPE:
        return f"option {key!r} changes the statistics storprof reads"
    if key == "ioengine":
        engine = value.strip()
        if engine == "exec":
            return "option 'ioengine=exec' runs a command"
        if engine not in ALLOWED_ENGINES:
            return (f"option 'ioengine={engine}' is not a plain file engine "
                    f"(allowed: {', '.join(ALLOWED_ENGINES)})")
    if key in _FILE_AFTER_COLON and ":" in value:
        return f"option '{key}={value}' names a file"
    if value.startswith("/") or re.search(r"(^|/)\.\.(/|$)", value):
        return f"option '{key}={value}' looks like a path"
    return None


def _writes(job: FioJob) -> bool:
    rw = (job.option("rw") or job.option("readwrite") or "read").strip()
    return rw not in ("read", "randread")


def builtin_job_names(jobs_dir: Path = JOBS_DIR) -> list[str]:
    """Names of the job files shipped with storprof, e.g. 'randread-4k'."""
    return sorted(p.stem for p in Path(jobs_dir).glob("*.fio"))


def load_job(name_or_path: str, jobs_dir: Path = JOBS_DIR) -> FioJob:
    """A built-in job by name, or a user's .fio file by path; parsed and validated."""
    text_arg = str(name_or_path)
    looks_like_path = text_arg.endswith(".fio") or "/" in text_arg
    path = Path(text_arg) if looks_like_path else Path(jobs_dir) / f"{text_arg}.fio"
    if not path.is_file():
        if looks_like_path:
            raise UserError(f"job file {text_arg} does not exist")
        names = ", ".join(builtin_job_names(jobs_dir)) or "none found"
        raise UserError(f"unknown job {text_arg!r}; built-in jobs: {names} (or give a path to a .fio file)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read job file {path}: {exc}") from None
    job = parse_job(text, path)
    validate(job)
    return job


# Untimed, before the first measured run of each data file: write it whole with direct I/O.
# A file fio has just laid out reads far faster than one written since (seen here: 4 KiB direct
# random reads at ~185K IOPS right after layout, ~84K once it was overwritten), so without this
# the first repeat measured the layout, not the placement.
PRECONDITION_JOB = """; Precondition: write the data file once, sequentially, with direct I/O.
[global]
ioengine=libaio
direct=1
size={size}
[precondition]
rw=write
bs=1m
iodepth=4
"""


def precondition_job(size: str) -> FioJob:
    return parse_job(PRECONDITION_JOB.format(size=size), "precondition.fio")


def fio_argv(job_path: str) -> list[str]:
    """The fio command for one rendered job file; JSON so results are parsed, not scraped."""
    return ["fio", "--output-format=json", str(job_path)]


def check_with_fio(job: FioJob) -> None:
    """Let fio's own parser reject unknown options or bad values before anything runs."""
    with tempfile.TemporaryDirectory(prefix="storprof-parse-") as tmp:
        job_path = Path(tmp) / f"{job.name or 'job'}.fio"
        job_path.write_text(job.render(directory="/tmp",
                                      filename=None if job.own_files else f"{job.name or 'job'}.storprof"))
        done = run(["fio", "--parse-only", str(job_path)], timeout=60, check=False)
    if done.returncode != 0:
        raise UserError(f"{job.source}: fio rejects the job: {fio_complaint(done.stderr, done.stdout)}")


def fio_complaint(stderr: str, stdout: str = "") -> str:
    """fio's parse error on one line, without its 'job X dropped' follow-up noise."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.fullmatch(r"fio: job .* dropped", ln)]
    if not useful:
        useful = lines or [ln.strip() for ln in stdout.splitlines() if ln.strip()][:3]
    return "; ".join(useful) or "no message"


def parse_size(text: str) -> int | None:
    """Bytes in a fio size like '4k', '1m', '1MiB' or '512' (fio's default: k = 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*", text, re.IGNORECASE)
    if not match:
        return None
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** " kmgtp".index(prefix.lower() or " "))


def _flag(value: str) -> bool:
    """fio's boolean: a bare flag or any non-zero number is true."""
    return value.strip() == "" or value.strip() not in ("0", "false", "no", "off")


def _plain_value(key: str, value: str) -> str:
    """An override value that cannot smuggle a second option or a comment into the job."""
    value = str(value).strip()
    if not value or re.search(r"[\s;#=\[\]]", value):
        raise UserError(f"invalid {key} {value!r}")
    return value


def _seconds(key: str, seconds: float) -> str:
    """fio time text: whole seconds as '20', fractions as milliseconds ('2500ms')."""
    if seconds < 0:
        raise UserError(f"{key} must not be negative, got {seconds:g}")
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{round(seconds * 1000)}ms"
