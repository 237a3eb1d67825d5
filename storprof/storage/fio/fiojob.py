"""The FioJob: one parsed job file as a frozen value, what it asks fio to do (options as fio reads
them, with [global] and aliases), the sweep's overrides forced in, and the text storprof runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from storprof.errors import UserError
from storprof.host.limits import CEILING, Limits
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.options import canonical, size_bytes, time_seconds
from storprof.storage.fio.placements import PLACEMENTS

GLOBAL = "global"

Option = tuple[str, "str | None"]          # (key, value); value None for a bare flag like `time_based`
Section = tuple[str, tuple[Option, ...]]  # (section name, options in file order)

METADATA_ENGINES = fiooptions.METADATA_ENGINES

# What a `; storprof: <directive>` comment in a job file may ask for.
DIRECTIVES = {
    "lower-layer": "on the union placement, read a data file that lives in a lower image layer",
    "placements": "placements=host,union,...: run only on these placements (of those the sweep has)",
}


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
        on = fio_bool("" if found[1] is None else found[1])
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
            if fio_bool(self.section_option(i, "file_append") or "0"):
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
            if self.section_option(i, "time_based") is None or not fio_bool(self.section_option(i, "time_based") or ""):
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


def _own_directives(directives: tuple[str, ...]) -> list[str]:
    """The directives as storprof spells them: the known ones, and placements it knows by name."""
    own = [d for d in directives if d in DIRECTIVES]
    for d in directives:
        if d.startswith("placements="):
            names = [p for p in d.split("=", 1)[1].split(",") if p in PLACEMENTS]
            if names:
                own.append("placements=" + ",".join(names))
    return own


def parse_size(text: str) -> int | None:
    """Bytes in a fio size like '4k', '1m', '1MiB' or '512' (fio's default: k = 1024)."""
    return size_bytes(text)


def fio_bool(value: str) -> bool:
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
