"""fio job files: parse them, refuse the dangerous ones, and render what storprof actually runs.

storprof decides where a job writes (it must be the storage driver under test), so a job file
may describe the I/O pattern but never the target, and it may not run commands or touch other files.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from storprof.errors import UserError
from storprof.host import safepath
from storprof.host.limits import CEILING, Limits
from storprof.host.sandbox import INPUT_DIR, run_sandboxed
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.lines import line_problem
from storprof.storage.fio.options import canonical, size_bytes, time_seconds
from storprof.storage.fio.placements import PLACEMENTS

# The built-in jobs ship inside the package (package data), so any install has them.
JOBS_DIR = Path(__file__).resolve().parent / "jobs"

GLOBAL = "global"

Option = tuple[str, "str | None"]          # (key, value); value None for a bare flag like `time_based`
Section = tuple[str, tuple[Option, ...]]  # (section name, options in file order)

# fio's option names: letters, digits, '_' and '-' (hugepage-size, trigger-file).
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# A section header as fio reads it after cutting the comment: '[' name ']' and nothing else.
_SECTION = re.compile(r"\[(.*)\]")

ALLOWED_ENGINES = fiooptions.ENGINES
METADATA_ENGINES = fiooptions.METADATA_ENGINES

# What a `; storprof: <directive>` comment in a job file may ask for.
DIRECTIVES = {
    "lower-layer": "on the union placement, read a data file that lives in a lower image layer",
    "placements": "placements=host,union,...: run only on these placements (of those the sweep has)",
}
_DIRECTIVE = re.compile(r"[;#]\s*storprof:\s*(.*)")


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

    def with_files(self, nrfiles: int, create_only: bool = False) -> FioJob:
        """A metadata job with `nrfiles` files per process (scaled so its run is long enough to time);
        with create_only, the untimed run that only lays its files out."""
        forced: list[Option] = [("nrfiles", str(int(nrfiles)))]
        if create_only:
            forced.append(("create_only", "1"))
        return self._with_global(forced)

    def render(self, directory: str, filename: str | None = None) -> str:
        """The job text storprof runs: the file's options plus the target and group reporting.
        Without a filename fio names its own files in `directory` (metadata jobs)."""
        target: list[Option] = [("directory", directory)]
        if filename is not None:
            target.append(("filename", filename))
        for key, value in target:
            if not value or any(c in value for c in ":;#\n\r"):
                raise UserError(f"{self.source}: cannot use {key} {value!r} for fio "
                                "(fio reads ':' as a list separator and ';' or '#' as a comment)")
        job = self._with_global(target + [("group_reporting", "1")])
        # No text of the user's comments: the description stays metadata (FioJob.description),
        # and a directive is written back only in storprof's own words.
        lines = [f"; storprof: {d}" for d in _own_directives(self.directives)]
        for name, options in job.sections:
            if lines:
                lines.append("")
            lines.append(f"[{name}]")
            lines.extend(key if value is None else f"{key}={value}" for key, value in options)
        return "\n".join(lines) + "\n"

    def option(self, key: str) -> str | None:
        """Effective value of an option for the (first) job: its own section over [global].

        Matches fio's aliases too (`timeout` is `runtime`). A bare flag such as `time_based` gives
        "", an absent option None. For `direct`, use the `direct` property (buffered inverts it).
        """
        return self.section_option(self._first_job_index(), key)

    def section_option(self, index: int, key: str) -> str | None:
        """The value job section `index` runs with: the [global] sections before it, then its own."""
        found = self._setting(index, key)
        return None if found is None else ("" if found[1] is None else found[1])

    def _setting(self, index: int, key: str) -> Option | None:
        """The last (key as spelled, value) that sets this option for section `index`."""
        want = canonical(key)
        found = None
        for i, (name, options) in enumerate(self.sections[:index + 1]):
            if name != GLOBAL and i != index:
                continue
            for k, v in options:
                if canonical(k) == want:
                    found = (k, v)
        return found

    def header_line(self, index: int) -> int:
        """The line of section `index`'s header, for messages (0 when unknown)."""
        return self.line_numbers[index][0] if index < len(self.line_numbers) else 0

    def job_indexes(self) -> list[int]:
        """Positions of the job sections (not [global]) in file order."""
        return [i for i, (name, _) in enumerate(self.sections) if name != GLOBAL]

    def _first_job_index(self) -> int:
        return next(iter(self.job_indexes()), len(self.sections) - 1)

    @property
    def direct(self) -> bool:
        """Whether the job bypasses the page cache: direct=1, or buffered=0 (its inverse)."""
        found = self._setting(self._first_job_index(), "direct")
        if found is None:
            return False
        on = _flag("" if found[1] is None else found[1])
        return on if found[0] == "direct" else not on

    def numjobs(self, index: int) -> int:
        return int(self.section_option(index, "numjobs") or 1)

    def bytes_needed(self) -> int:
        """Disk space the job's own files take on one placement: every section's files (a metadata
        job's nrfiles x numjobs files of filesize, at least a block each), or the data file storprof
        gives it (size plus offset)."""
        if not self.own_files:
            size = size_bytes(self.option("size") or "0") or 0
            return size + (size_bytes(self.option("offset") or "0") or 0)
        total = 0
        for i in self.job_indexes():
            files = int(self.section_option(i, "nrfiles") or 1) * self.numjobs(i)
            each = size_bytes(self.section_option(i, "filesize") or "0") or 0
            total += files * max(each, 4096)
        return total

    def limits(self) -> Limits:
        """What one run of this job may take (limits.py): memory for its largest I/O buffers
        (bs x iodepth of one process), processes for its numjobs, and files of its own size: the
        largest size or filesize (plus offset) of any section, since they share the data file.
        A file_append job grows its file by every run, so only the ceiling bounds it."""
        buffers, processes, largest = 0, 0, self.bytes_needed()
        for i in self.job_indexes():
            blocks = fiooptions.numbers(self.section_option(i, "bs") or "4k", "bytes") or [4096.0]
            buffers = max(buffers, int(max(blocks)) * int(self.section_option(i, "iodepth") or 1))
            processes += self.numjobs(i)
            sizes = [size_bytes(self.section_option(i, k) or "0") or 0 for k in ("size", "filesize", "offset")]
            largest = max(largest, max(sizes[:2]) + sizes[2])
            if _flag(self.section_option(i, "file_append") or "0"):
                largest = CEILING.file_size
        return Limits.for_job(buffers, processes, largest)

    def time_limit(self, cap: float) -> float:
        """Seconds after which a run of this job is killed: for a time-based job its expected
        time with room for laying out its files (at 20 MiB/s) and fio's start; else `cap`."""
        expected = self.expected_seconds()
        if expected is None:
            return cap
        return min(cap, 1.5 * expected + 60 + self.bytes_needed() / (20 << 20))

    def expected_seconds(self) -> float | None:
        """How long fio should take when the job is time-based (runtime + ramp + start delay per
        loop, summed over stonewalled sections); None when the amount of I/O decides."""
        total = 0.0
        for i in self.job_indexes():
            if self.section_option(i, "time_based") is None or not _flag(self.section_option(i, "time_based") or ""):
                return None
            seconds = [time_seconds(self.section_option(i, k) or "0") or 0.0
                       for k in ("runtime", "ramp_time", "startdelay")]
            total += sum(seconds) * int(self.section_option(i, "loops") or 1)
        return total

    @property
    def writes(self) -> bool:
        """The job writes to its data file (any rw but read and randread)."""
        return (self.option("rw") or "read").split(":")[0].strip() not in ("read", "randread")

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
        parsed = (parse_size(part) for part in re.split(r"[,:-]", bs) if part.strip())
        sizes = [s for s in parsed if s is not None]
        return "bw" if sizes and max(sizes) >= 64 * 1024 else "iops"

    def _with_global(self, forced: list[Option]) -> FioJob:
        """Put options into the first [global] (adding one if needed) and drop them from other sections."""
        if not forced:
            return self
        keys = {canonical(k) for k, _ in forced}
        sections = list(self.sections)
        lines = list(self.line_numbers) or [(0, tuple(0 for _ in opts)) for _, opts in sections]
        if not sections or sections[0][0] != GLOBAL:
            sections.insert(0, (GLOBAL, ()))
            lines.insert(0, (0, ()))
        new_sections: list[Section] = []
        new_lines: list[tuple[int, tuple[int, ...]]] = []
        for index, ((name, options), (header, option_lines)) in enumerate(zip(sections, lines)):
            kept = [(o, n) for o, n in zip(options, option_lines) if canonical(o[0]) not in keys]
            if index == 0:
                kept += [(o, 0) for o in forced]
            new_sections.append((name, tuple(o for o, _ in kept)))
            new_lines.append((header, tuple(n for _, n in kept)))
        return FioJob(self.name, self.source, tuple(new_sections), self.description, self.directives,
                      tuple(new_lines))


def parse_job(text: str, source: Path | str) -> FioJob:
    """Parse fio's INI-like job format, keeping order and duplicate keys; the name is the file stem.

    Lines are read as fio 3.33 reads them (init.c, __parse_jobs_ini): split on newlines only, cut
    at the first ';' or '#', blanks stripped; a header is '[' name ']'. Characters fio would treat
    specially (control characters, '$', quotes outside patterns) are refused here, so that what
    storprof checks is what fio runs.
    """
    parsed = _JobText(Path(source))
    for number, raw in enumerate(text.split("\n"), start=1):
        parsed.read_line(number, raw[:-1] if raw.endswith("\r") else raw)
    return parsed.job()


class _JobText:
    """What parse_job has read so far."""

    def __init__(self, source: Path):
        self.source = source
        self.sections: list[tuple[str, list[Option]]] = []
        self.lines: list[tuple[int, list[int]]] = []
        self.description = ""
        self.directives: list[str] = []

    def read_line(self, number: int, raw: str) -> None:
        """One line, comments included: fio 3.33 reads every line with an 8 KiB fgets and splits a
        longer one, so a line is checked whole before anything decides it is a comment."""
        where = f"{self.source}:{number}"
        problem = line_problem(raw)
        if problem:
            raise UserError(f"{where}: {problem}")
        stripped = raw.strip(" \t")
        directive = _DIRECTIVE.fullmatch(stripped)
        if directive:
            self.directives.append(_directive(directive.group(1).strip(), where))
        elif stripped[:1] in (";", "#"):
            if not self.description and not self.sections:
                self.description = stripped.lstrip(";#").strip()
        else:
            # fio cuts a line at the first ';' or '#', wherever it is: a value never contains them.
            line = re.split(r"[;#]", stripped, maxsplit=1)[0].strip(" \t")
            if line:
                self._read_setting(number, where, line, raw)

    def _read_setting(self, number: int, where: str, line: str, raw: str) -> None:
        unsafe = sorted(set(line) - _SAFE_CHARS)
        if unsafe:
            raise UserError(f"{where}: character {unsafe[0]!r} is not allowed in a job file (fio expands "
                            "'$' from the environment and reads a quoted name as a file); allowed are "
                            "letters, digits, blanks and _.,:=%+/@()[]-\"")
        if line.startswith("include"):
            # fio treats every line starting with "include" as an include of another job file.
            raise UserError(f"{where}: 'include' pulls in another job file; storprof does not allow it")
        header = _SECTION.fullmatch(line)
        if header:
            self.sections.append((_section_name(header.group(1), where), []))
            self.lines.append((number, []))
            return
        key, eq, value = line.partition("=")
        key = key.strip(" \t")
        if not _KEY.fullmatch(key):
            raise UserError(f"{where}: expected 'key=value' or '[section]', got {raw.strip()!r}")
        if not self.sections:
            raise UserError(f"{where}: option {key!r} comes before the first [section]")
        self.sections[-1][1].append((key, value.strip(" \t") if eq else None))
        self.lines[-1][1].append(number)

    def job(self) -> FioJob:
        source = self.source
        if not self.sections:
            raise UserError(f"{source}:1: empty job file; expected a [global] and a job [section]")
        if all(name == GLOBAL for name, _ in self.sections):
            raise UserError(f"{source}:{self.lines[0][0]}: no job section besides [global]; "
                            f"add one such as [{source.stem or 'job'}]")
        return FioJob(name=source.stem, source=source,
                      sections=tuple((name, tuple(options)) for name, options in self.sections),
                      description=self.description, directives=tuple(self.directives),
                      line_numbers=tuple((header, tuple(option_lines)) for header, option_lines in self.lines))


_SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t_.,:=%+/@()[]-\"")


def _directive(text: str, where: str) -> str:
    if text.split("=", 1)[0].strip() == "placements":
        return "placements=" + ",".join(p.strip() for p in text.split("=", 1)[-1].split(",") if p.strip())
    if text not in DIRECTIVES:
        known = ", ".join(f"{k} ({v})" for k, v in DIRECTIVES.items())
        raise UserError(f"{where}: unknown storprof directive {text!r}; known: {known}")
    return text


def _own_directives(directives: tuple[str, ...]) -> list[str]:
    """The directives as storprof spells them: the known ones, and placements it knows by name."""
    own = [d for d in directives if d in DIRECTIVES]
    for d in directives:
        if d.startswith("placements="):
            names = [p for p in d.split("=", 1)[1].split(",") if p in PLACEMENTS]
            if names:
                own.append("placements=" + ",".join(names))
    return own


def _section_name(text: str, where: str) -> str:
    """A section name as fio will use it, which must be a plain name: fio names a metadata job's
    files `<directory>/<section>.<job>.<file>`, so a name with '/' or '..' is a path out of it;
    and fio takes every section whose name starts with 'global' for [global]."""
    name = text.strip(" \t")
    if not name:
        raise UserError(f"{where}: empty section name '[]'")
    if name != text:
        raise UserError(f"{where}: section name {text!r} has blanks around it; fio would keep them")
    if name.startswith(GLOBAL) and name != GLOBAL:
        raise UserError(f"{where}: section [{name}] would be a [global] section to fio (every name "
                        "starting with 'global' is); name it [global] or something else")
    if not fiooptions.NAME.fullmatch(name):
        raise UserError(f"{where}: section name [{name}] is not allowed: use up to 64 letters, digits, "
                        "'_', '.' or '-', starting with a letter or digit (fio names files after it)")
    return name


def validate(job: FioJob, allowed_extra: frozenset[str] | tuple[str, ...] = ()) -> None:
    """Refuse a job unless every option is one that only shapes the I/O pattern (fiooptions), with
    an allowed value, within the bounds; `allowed_extra` are the user's --allow-option names."""
    extra = frozenset(canonical(n) for n in allowed_extra)
    if not fiooptions.NAME.fullmatch(job.name):
        raise UserError(f"{job.source}: job name {job.name!r} (the file's name) is not allowed: use up to 64 "
                        "letters, digits, '_', '.' or '-', starting with a letter or digit")
    unknown = [p for p in (job.placements or ()) if p not in PLACEMENTS]
    if job.placements is not None and (unknown or not job.placements):
        raise UserError(f"{job.source}: unknown placement {', '.join(unknown) or '(none)'} in the "
                        f"placements directive; choose from {', '.join(PLACEMENTS)}")
    line_numbers = job.line_numbers or tuple((0, tuple(0 for _ in opts)) for _, opts in job.sections)
    for (_, options), (_, option_lines) in zip(job.sections, line_numbers):
        spelled: dict[str, str] = {}
        for (key, value), number in zip(options, option_lines):
            where = f"{job.source}:{number}" if number else str(job.source)
            problem = fiooptions.why_refused(key, value, extra)
            if problem:
                raise UserError(f"{where}: {problem}; storprof does not allow it")
            other = spelled.setdefault(canonical(key), key)
            if other != key:
                raise UserError(f"{where}: both '{other}' and '{key}' set {canonical(key)} in one section; "
                                "fio applies them in an order of its own, so use one")
    if job.lower_layer and job.own_files:
        raise UserError(f"{job.source}: a lower-layer job reads one data file; "
                        f"ioengine={job.option('ioengine')} makes files of its own")
    if job.lower_layer and job.writes:
        raise UserError(f"{job.source}: a lower-layer job may only read (rw={job.option('rw')}): "
                        "a write would copy the file up to the top layer")
    _check_bounds(job)
    _check_one_group(job)


def _check_one_group(job: FioJob) -> None:
    """fio runs sections after a stonewall (or new_group) as a group of their own, one after the
    other; storprof reads one group per job (its sections running at once, their rates summed), so
    a file of several groups is refused rather than summed across phases that never overlapped."""
    for i in job.job_indexes()[1:]:
        for key in ("stonewall", "new_group"):
            value = job.section_option(i, key)
            if value is not None and _flag(value):
                raise UserError(f"{job.source}:{job.header_line(i)}: section [{job.sections[i][0]}] starts a "
                                f"new group ({key}); storprof reports one group per job: put each group in "
                                "a job file of its own")


def _check_bounds(job: FioJob) -> None:
    """What the job would make fio use in all: processes, files, buffer memory."""
    indexes = job.job_indexes()
    if len(indexes) > fiooptions.MAX_JOB_SECTIONS:
        raise UserError(f"{job.source}: {len(indexes)} job sections; storprof allows at most "
                        f"{fiooptions.MAX_JOB_SECTIONS}")
    processes = files = 0
    for i in indexes:
        numjobs = job.numjobs(i)
        processes += numjobs
        files += int(job.section_option(i, "nrfiles") or 1) * numjobs
        blocks = fiooptions.numbers(job.section_option(i, "bs") or "4k", "bytes") or [4096.0]
        memory = max(blocks) * int(job.section_option(i, "iodepth") or 1) * numjobs
        if memory > fiooptions.MAX_IO_MEMORY:
            raise UserError(f"{job.source}:{job.header_line(i)}: section [{job.sections[i][0]}] asks for "
                            f"{memory / 2**30:.1f} GiB of I/O buffers (bs x iodepth x numjobs); storprof allows "
                            f"at most {fiooptions.MAX_IO_MEMORY / 2**30:g} GiB")
    if processes > fiooptions.MAX_TOTAL_JOBS:
        raise UserError(f"{job.source}: {processes} fio processes in all (numjobs summed over the sections); "
                        f"storprof allows at most {fiooptions.MAX_TOTAL_JOBS}")
    if files > fiooptions.MAX_TOTAL_FILES:
        raise UserError(f"{job.source}: {files} files in all (nrfiles x numjobs summed over the sections); "
                        f"storprof allows at most {fiooptions.MAX_TOTAL_FILES}")


def builtin_job_names(jobs_dir: Path = JOBS_DIR) -> list[str]:
    """Names of the job files shipped with storprof, e.g. 'randread-4k'."""
    return sorted(p.stem for p in Path(jobs_dir).glob("*.fio"))


def load_job(name_or_path: str, jobs_dir: Path = JOBS_DIR, allowed_extra: tuple[str, ...] = ()) -> FioJob:
    """A built-in job by name, or a user's .fio file by path; parsed and validated."""
    text_arg = str(name_or_path)
    looks_like_path = text_arg.endswith(".fio") or "/" in text_arg
    path = Path(text_arg) if looks_like_path else Path(jobs_dir) / f"{text_arg}.fio"
    planted = safepath.planted_link(path) if looks_like_path else None
    if planted:
        raise UserError(f"job file {text_arg}: {planted}")
    if not path.is_file():
        if looks_like_path and (path.exists() or path.is_symlink()):
            raise UserError(f"job file {text_arg} is not a regular file")
        if looks_like_path:
            raise UserError(f"job file {text_arg} does not exist")
        names = ", ".join(builtin_job_names(jobs_dir)) or "none found"
        raise UserError(f"unknown job {text_arg!r}; built-in jobs: {names} (or give a path to a .fio file)")
    try:
        if path.stat().st_size > fiooptions.MAX_JOB_FILE_BYTES:
            raise UserError(f"{path}: the job file is {path.stat().st_size} bytes; storprof reads job files of "
                            f"at most {fiooptions.MAX_JOB_FILE_BYTES} bytes")
        # No newline translation (fio splits on \n only); a byte that is not UTF-8 is kept as a
        # surrogate, so that the line check names its line like any other non-ASCII character.
        # The name as resolved now, read without following a symlink put there since.
        data = safepath.read_regular(os.path.realpath(path), fiooptions.MAX_JOB_FILE_BYTES)
        text = data.decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UserError(f"cannot read job file {path}: {safepath.open_error(path, exc)}") from None
    job = parse_job(text, path)
    validate(job, allowed_extra)
    return job


# Untimed, before the first measured run of each data file: write it whole with direct I/O. A file
# fio has just laid out reads far faster than one written since (docs/findings.md), so without
# this the first repeat would measure the layout, not the placement.
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


def check_with_fio(job: FioJob) -> None:
    """Let fio's own parser reject unknown options or bad values before anything runs; in the
    sandbox, since fio reads some values as files already while parsing."""
    with tempfile.TemporaryDirectory(prefix="storprof-parse-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        job_path = Path(tmp) / "job.fio"
        job_path.write_text(job.render(directory=str(work),
                                      filename=None if job.own_files else f"{job.name or 'job'}.storprof"))
        done = run_sandboxed("fio", ["--parse-only", f"{INPUT_DIR}/job.fio"], writable=[work],
                             inputs={"job.fio": job_path}, timeout=60, check=False, limits=job.limits())
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
    return size_bytes(text)


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
