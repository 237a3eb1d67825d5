"""Every line of a job file is checked as fio 3.33 reads it, comments included (issue 23).

fio reads a job file with fgets(8192) and skips a line whose first non-blank is ';' or '#'. A
longer line comes in pieces, and every piece after the first is parsed as a line of its own: a
long comment hides job sections. Each form here is refused by load_job with one line naming the
file, the line and why; that fio really reads the first one as a hidden job is shown against fio
itself in tests/integration/test_job_sandbox.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.storage.fio.job import load_job, parse_job
from storprof.storage.fio.lines import MAX_LINE

HIDDEN = b"[hidden]\nfilename=/etc/hostname\nexec_prerun=/usr/bin/touch /root/owned\nwrite_iolog=/root/log\n"
# A first comment that fio's first fgets ends just before "[hidden]": the rest is a section to fio.
SMUGGLER = b"; " + b"x" * (8191 - 2) + HIDDEN
JOB = b"[global]\nioengine=sync\nsize=1m\n[j]\nrw=read\n"


def refused(tmp_path: Path, data: bytes, line: int) -> str:
    path = tmp_path / "job.fio"
    path.write_bytes(data)
    with pytest.raises(UserError) as err:
        load_job(str(path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    return message


def test_a_long_first_comment_that_fio_would_split_into_a_hidden_job_is_refused(tmp_path):
    # The file: fio's second fgets of line 1 starts at "[hidden]", before every [global].
    assert "line of 8199 characters" in refused(tmp_path, SMUGGLER + JOB, 1)


def test_a_9000_character_comment_is_refused(tmp_path):
    assert "line of 9002 characters" in refused(tmp_path, b"; " + b"x" * 9000 + b"\n" + HIDDEN + JOB, 1)


@pytest.mark.parametrize("length", [8191, 8192, 8193])
def test_comment_lines_around_fios_buffer_size_are_refused(tmp_path, length):
    # 8191 is what one fgets takes; the newline after it is the next piece (an empty line).
    padding = b"x" * (length - len(b"; ") - len(b"[hidden]"))
    data = JOB + b"; " + padding + b"[hidden]\nfilename=/etc/hostname\n"
    assert f"line of {length} characters" in refused(tmp_path, data, 6)


def test_a_long_line_behind_a_setting_is_refused_too(tmp_path):
    data = JOB + b"rw=read ; " + b"y" * 8200 + b"[hidden]\n"
    assert "line of" in refused(tmp_path, data, 6)


def test_a_comment_of_exactly_the_limit_is_fine(tmp_path):
    path = tmp_path / "job.fio"
    path.write_bytes(b";" + b"z" * (MAX_LINE - 1) + b"\n" + JOB)
    assert load_job(str(path)).description == "z" * (MAX_LINE - 1)


@pytest.mark.parametrize("comment, what", [
    (b"; a carriage return\r[hidden] alone", "control character '\\r'"),
    (b"; a nul\x00[hidden]", "control character '\\x00'"),
    (b"; a form feed\x0c", "control character '\\x0c'"),
    (b"; a vertical tab\x0b", "control character '\\x0b'"),
    (b"; an escape \x1b]0;title\x07", "control character '\\x1b'"),
    (b"; a delete \x7f", "control character '\\x7f'"),
    ("; a line separator \u2028[hidden]".encode(), "non-ASCII character '\\u2028'"),
    ("; caf\u00e9".encode(), "non-ASCII character"),
    ("\ufeff[global]".encode(), "non-ASCII character '\\ufeff'"),
    (b"# \x85 next line", "byte that is not UTF-8 (0x85)"),     # fio would see a raw byte
])
def test_control_and_non_ascii_characters_are_refused_in_comments(tmp_path, comment, what):
    assert what in refused(tmp_path, JOB + comment + b"\n", 6)


def test_a_crlf_file_still_reads(tmp_path):
    path = tmp_path / "job.fio"
    path.write_bytes(JOB.replace(b"\n", b"\r\n"))
    assert load_job(str(path)).option("rw") == "read"


@pytest.mark.parametrize("line", [b"include /etc/fio/other.fio", b"  include other.fio", b"includeother.fio",
                                  b"include=x"])
def test_include_lines_are_refused(tmp_path, line):
    assert "'include' pulls in another job file" in refused(tmp_path, JOB + line + b"\n", 6)


@pytest.mark.parametrize("line", [b"size=${HOME}", b"size=$mb_memory", b"numjobs=$ncpus", b"size=(1024*1024)",
                                  b"--name=x", b"rw=read \\", b"rw='read'"])
def test_expansions_math_and_other_forms_fio_reads_specially_are_refused(tmp_path, line):
    message = refused(tmp_path, JOB + line + b"\n", 6)
    assert "character" in message or "expected 'key=value'" in message


def test_the_description_is_metadata_and_never_reaches_the_rendered_file():
    text = "; Reads, $HOME and all [x] that = said\n; storprof: placements=host,union\n" + JOB.decode()
    job = parse_job(text, "j.fio")
    assert job.description == "Reads, $HOME and all [x] that = said"
    rendered = job.render("/d", "f")
    assert "Reads" not in rendered and "$HOME" not in rendered
    assert rendered.startswith("; storprof: placements=host,union\n\n[global]\n")
    assert parse_job(rendered, "r.fio").placements == ("host", "union")


def test_a_directive_is_rendered_in_storprofs_own_words_only():
    # parse_job keeps an unknown placement (validate refuses it); render writes only known names.
    job = parse_job("; storprof: placements=host,b=1\n" + JOB.decode(), "j.fio")
    assert job.render("/d", "f").splitlines()[0] == "; storprof: placements=host"
