"""Whether storprof runs a job file: every option one that only shapes the I/O pattern (the
allowlist in options.py), within the bounds of what fio may use, one group per job, and then fio's
own parser, in the sandbox, agreeing."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from storprof.errors import UserError
from storprof.host.sandbox import INPUT_DIR, run_sandboxed
from storprof.storage.fio import options as fiooptions
from storprof.storage.fio.fiojob import FioJob, fio_bool
from storprof.storage.fio.options import canonical
from storprof.storage.fio.placements import PLACEMENTS

ALLOWED_ENGINES = fiooptions.ENGINES


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
            if value is not None and fio_bool(value):
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
