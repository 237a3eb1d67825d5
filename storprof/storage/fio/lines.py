"""How fio 3.33 reads a job file's lines, so that storprof reads each one the same way first.

fio (init.c, __parse_jobs_ini) reads a line with fgets into OPT_LEN_MAX = 8192 bytes, strips
blanks and control characters at both ends (isspace, iscntrl), and skips it as a comment when a
';' or '#' comes before anything else. A longer line arrives in pieces, and every piece after the
first is parsed as a line of its own, so a long comment can hold job sections. Hence every line,
comments included, is checked whole here before anything decides it is a comment.
"""

from __future__ import annotations

MAX_LINE = 1000       # storprof's own bound on every line, comments included
FGETS_CHARS = 8191    # what one fgets(OPT_LEN_MAX) of fio 3.33 takes of a line


def line_problem(raw: str) -> str | None:
    """Why fio might read this line (without its newline, and a final CR) differently from
    storprof, or None. Checked on every line, comments too: a comment fio splits is job lines."""
    if len(raw) > MAX_LINE:
        return (f"line of {len(raw)} characters; fio reads a line over {FGETS_CHARS} in pieces and parses "
                f"the rest as lines of their own, so storprof refuses lines over {MAX_LINE} (comments too)")
    bad = next((c for c in raw if not (c == "\t" or " " <= c <= "~")), None)
    if bad is not None:
        if 0xDC80 <= ord(bad) <= 0xDCFF:                 # load_job's surrogateescape of a raw byte
            return (f"byte that is not UTF-8 (0x{ord(bad) - 0xDC00:02x}) in the job file (comments too); "
                    "only printable ASCII and tabs are allowed")
        kind = "non-ASCII character" if ord(bad) > 127 else "control character"
        return (f"{kind} {bad!r} in the job file (comments too); fio reads such bytes differently "
                "from storprof (it strips or skips them), so only printable ASCII and tabs are allowed")
    return None
