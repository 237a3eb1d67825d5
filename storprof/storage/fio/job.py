"""fio job files: read them as fio 3.33 does, refuse what fio would read differently, and load
them (a built-in by name, a user's file by path), checked by check.validate into a FioJob.

storprof decides where a job writes (it must be the storage driver under test), so a job file
may describe the I/O pattern but never the target, and it may not run commands or touch other files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from storprof.errors import UserError
from storprof.host import safepath
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.check import validate
from storprof.storage.fio.fiojob import DIRECTIVES, GLOBAL, FioJob, Option
from storprof.storage.fio.lines import line_problem

# The built-in jobs ship inside the package (package data), so any install has them.
JOBS_DIR = Path(__file__).resolve().parent / "jobs"

# fio's option names: letters, digits, '_' and '-' (hugepage-size, trigger-file).
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# A section header as fio reads it after cutting the comment: '[' name ']' and nothing else.
_SECTION = re.compile(r"\[(.*)\]")
_DIRECTIVE = re.compile(r"[;#]\s*storprof:\s*(.*)")


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
