"""Results directories as input: malformed files give one line and exit 1 or 2 from `table`,
`report` and `compare` (never a traceback, never a hang, never hundreds of MB), escape sequences
in them never reach the terminal, and as root, a results directory another user planted cannot
make `report` write through a symlink or copy a root-only file into the report.

Every malformed form is made from a real sweep's results (tests/fixtures/results-quick)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli
from tests.conftest import FIXTURES, NOBODY

pytestmark = pytest.mark.integration

QUICK = FIXTURES / "results-quick"
# One 50 MB line: refused after reading at most MAX_LINE_BYTES of it.
BIG_LINE_BYTES = 50 << 20
# What a storprof that reads the big line whole would need beyond its baseline (about 150 MB).
MEMORY_LIMIT_KB = 400 << 10


def storprof(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True,
                          timeout=timeout, errors="replace")


def lines_of(d: Path) -> list[dict]:
    return [json.loads(ln) for ln in (d / "results.jsonl").read_text().splitlines()]


def write_lines(d: Path, lines: list) -> None:
    (d / "results.jsonl").write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def _edit(index: int, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A form: line `index` (of the fio lines) changed by `change`, which edits it or returns a
    replacement line (a string is written as it is)."""
    def form(d: Path) -> None:
        lines: list = lines_of(d)
        fio = [i for i, ln in enumerate(lines) if ln["kind"] == "fio"]
        target = fio[index]
        new = change(lines[target])
        if new is not None:
            lines[target] = new
        write_lines(d, lines)
    return form


def _set(**fields) -> Callable[[dict], None]:
    return lambda line: line.update(fields)


def _raw(d: Path, data: bytes, name: str = "results.jsonl") -> None:
    (d / name).write_bytes(data)


def _replace_with_dir(d: Path) -> None:
    (d / "results.jsonl").unlink()
    (d / "results.jsonl").mkdir()


def _replace_with_fifo(d: Path) -> None:
    (d / "results.jsonl").unlink()
    os.mkfifo(d / "results.jsonl")


def _stray_byte(d: Path) -> None:
    data = (d / "results.jsonl").read_bytes().split(b"\n")
    data[2] = data[2].replace(b'"job": "', b'"job": "\xff', 1)
    _raw(d, b"\n".join(data))


def _number_text(token: str) -> Callable[[Path], None]:
    def form(d: Path) -> None:
        text = (d / "results.jsonl").read_text().split("\n")
        line = json.loads(text[1])
        key = next(k for k, v in line["metrics"].items() if isinstance(v, float))
        text[1] = text[1].replace(f'"{key}": {json.dumps(line["metrics"][key])}', f'"{key}": {token}', 1)
        assert token in text[1]
        (d / "results.jsonl").write_text("\n".join(text))
    return form


def _deep(d: Path) -> None:
    lines: list = lines_of(d)
    lines[0] = json.dumps(lines[0])[:-1] + ', "params2": ' + "[" * 100000 + "]" * 100000 + "}"
    write_lines(d, lines)


def _big_line(d: Path) -> None:
    with open(d / "results.jsonl", "ab") as f:
        f.write(b'{"kind": "fio", "job": "' + b"x" * BIG_LINE_BYTES + b'"}\n')
    lines = (d / "results.jsonl").read_bytes()
    _raw(d, lines + lines[:200])          # not the last line: the cap, not the truncation rule, refuses it


REFUSED: dict[str, Callable[[Path], None]] = {
    "a line [1]": _edit(2, lambda line: "[1]"),
    "a line 'null'": _edit(2, lambda line: "null"),
    "schema_version a string": _edit(0, _set(schema_version="x")),
    "schema_version true": _edit(0, _set(schema_version=True)),
    "kind not a string": _edit(0, _set(kind=["fio"])),
    "a fio line without its job": _edit(1, lambda line: line.pop("job")),
    "a fio line without its driver_spec": _edit(1, lambda line: line.pop("driver_spec")),
    "repeat a string": _edit(1, _set(repeat="3")),
    "metrics a list": _edit(1, _set(metrics=[1, 2])),
    "metrics a string": _edit(1, _set(metrics="fast")),
    "a metric a string": _edit(1, lambda line: line["metrics"].update(read_iops="many")),
    "a metric an object": _edit(1, lambda line: line["metrics"].update(read_iops={"a": 1})),
    "params a list": _edit(1, _set(params=["size"])),
    "a param an object": _edit(1, lambda line: line["params"].update(size={"a": 1})),
    "status unknown": _edit(1, _set(status="\x1b]0;owned\x07")),
    "placement a number": _edit(1, _set(placement=1)),
    "direct a string": _edit(1, _set(direct="yes")),
    "fio_messages a string": _edit(1, _set(fio_messages="no")),
    "driver_status a list": _edit(1, _set(driver_status=[1])),
    "deep nesting": _deep,
    "a stray byte": _stray_byte,
    "1e308": _number_text("1e308"),
    "1e999": _number_text("1e999"),
    "NaN": _number_text("NaN"),
    "Infinity": _number_text("-Infinity"),
    "a 400-digit number": _number_text("1" * 400),
    "many keys": _edit(1, lambda line: line["metrics"].update({f"k{i}": 1.0 for i in range(5000)})),
    "a 50 MB line": _big_line,
    "not JSON mid-file": _edit(3, lambda line: '{"kind": "fio",'),
    "meta.json not an object": lambda d: _raw(d, b"[1, 2]\n", "meta.json"),
    "meta.json not JSON": lambda d: _raw(d, b"{\n", "meta.json"),
    "meta.json NaN": lambda d: _raw(d, b'{"precision": NaN}\n', "meta.json"),
    "meta.json deep": lambda d: _raw(d, b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "meta.json"),
    "meta.json a directory": lambda d: ((d / "meta.json").unlink(), (d / "meta.json").mkdir()),
    "results.jsonl a directory": _replace_with_dir,
    "results.jsonl a FIFO": _replace_with_fifo,
    "results.jsonl missing": lambda d: (d / "results.jsonl").unlink(),
    "results.jsonl a symlink": lambda d: ((d / "r").write_bytes((d / "results.jsonl").read_bytes()),
                                          (d / "results.jsonl").unlink(), (d / "results.jsonl").symlink_to("r")),
    "an empty results.jsonl": lambda d: _raw(d, b""),
}


@pytest.fixture
def results(tmp_path) -> Path:
    d = tmp_path / "results"
    shutil.copytree(QUICK, d)
    return d


def one_line_refusal(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode in (1, 2), (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("storprof: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr + done.stdout
    return lines[0]


def in_process(*args: str) -> subprocess.CompletedProcess:
    """storprof's command line run in this process (as click runs it): the same one-line error
    handling, without a Python start-up and pandas import per run (39 forms x 4 commands)."""
    result = CliRunner().invoke(cli.main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: not one line but {result.exception!r}") from result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


# Forms also run as a real process: a FIFO must not hang one, a stray byte must not kill its
# decoding of stderr, and a plain bad line is the common case.
AS_PROCESS = ("results.jsonl a FIFO", "a stray byte", "a line [1]")


@pytest.mark.parametrize("form", list(REFUSED))
def test_a_malformed_results_directory_is_one_line_from_every_reading_command(results, tmp_path, form):
    REFUSED[form](results)
    good = tmp_path / "good"
    shutil.copytree(QUICK, good)
    for argv in (["table", str(results)], ["report", str(results), "--out", str(tmp_path / "report")],
                 ["compare", str(good), str(results)], ["compare", str(results), str(good)]):
        done = storprof(*argv, timeout=60) if form in AS_PROCESS else in_process(*argv)
        line = one_line_refusal(done)
        assert str(results) in line or "results directory" in line, line
    assert not (tmp_path / "report" / "report.html").exists()


def test_a_50_mb_line_is_refused_reading_at_most_a_capped_line(results):
    """Under a memory limit a storprof that read the line whole would exceed (it took 504 MB)."""
    _big_line(results)
    done = subprocess.run(["prlimit", f"--as={MEMORY_LIMIT_KB << 10}", sys.executable, "-m", "storprof.cli",
                           "table", str(results)], capture_output=True, text=True, timeout=120)
    assert "a line longer than 1048576 bytes" in one_line_refusal(done)


@pytest.mark.parametrize("form", ["a truncated last line", "an unknown kind", "meta.json missing"])
def test_what_a_killed_run_or_a_newer_storprof_leaves_is_read_with_at_most_one_warning(results, form):
    if form == "a truncated last line":
        with open(results / "results.jsonl", "a") as f:
            f.write('{"kind": "fio", "jo')
    elif form == "an unknown kind":
        with open(results / "results.jsonl", "a") as f:
            for i in range(3):
                f.write(json.dumps({"kind": f"future\x1b[2J{i % 2}", "schema_version": 1}) + "\n")
    else:
        (results / "meta.json").unlink()
    done = storprof("table", str(results))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 1 and "\x1b" not in done.stderr
    assert all(line.startswith("storprof: warning: ") for line in done.stderr.splitlines())
    assert "randread-4k" in done.stdout


ESCAPES = ("\x1b]0;owned\x07", "\x1b]52;c;ZWNobyBvd25lZA==\x07", "\x9b31m", "\x1b[2J", "\x7f")


def test_escape_sequences_in_results_never_reach_the_terminal_and_html_is_escaped(results, tmp_path):
    lines = lines_of(results)
    evil = "".join(ESCAPES) + "<img src=x onerror=alert(1)>"
    for line in lines:
        if line["kind"] == "driver":
            line["reason"] = "gone " + evil
            line["status"] = "skipped"
        if line["kind"] in ("fio", "probe", "driver"):
            line["driver_spec"] = "vfs" + evil[:12] if line["driver_spec"].startswith("vfs") else line["driver_spec"]
    write_lines(results, lines)
    for argv in (["table", str(results)], ["report", str(results), "--out", str(tmp_path / "r")],
                 ["compare", str(results), str(results)]):
        done = storprof(*argv)
        assert done.returncode == 0, done.stderr
        shown = done.stdout + done.stderr
        assert not any(c in shown for c in "\x1b\x07\x9b\x7f"), repr(shown[:300])
        assert "gone" in shown or argv[0] == "compare"
    md = (tmp_path / "r" / "report.md").read_text()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in page and "\x1b" not in md + page


# --------------------------------------------------------------------------- root against nobody

def as_nobody(*argv: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                          capture_output=True, input=data, timeout=60, check=True)


@pytest.fixture
def shared(attack_dirs):
    """attack_dirs with a secret in the canary (a JSON file, as a root-only results directory's
    meta.json is), a page and a chart directory."""
    base, evil, canary = attack_dirs
    (canary / "secret.json").write_text('{"password": "root-secret-7f3a"}\n')
    (canary / "report.html").write_text("root's page\n")
    (canary / "charts").mkdir(mode=0o700)
    return base, evil, canary


def canary_intact(canary: Path) -> None:
    assert (canary / "secret.json").read_text() == '{"password": "root-secret-7f3a"}\n'
    assert (canary / "report.html").read_text() == "root's page\n"
    assert os.listdir(canary / "charts") == [] and sorted(os.listdir(canary)) == ["charts", "report.html",
                                                                                 "secret.json"]
    assert (canary.stat().st_mode & 0o777) == 0o700


def _planted(evil: Path, canary: Path) -> Path:
    """nobody's results directory: real results, report.html, report.md and the chart directory
    as symlinks into root's canary, meta.json a symlink to root's secret."""
    d = evil / "results"
    as_nobody("mkdir", str(d))
    as_nobody("sh", "-c", 'cat > "$1"', "sh", str(d / "results.jsonl"),
              data=(QUICK / "results.jsonl").read_bytes())
    as_nobody("ln", "-s", str(canary / "secret.json"), str(d / "meta.json"))
    as_nobody("ln", "-s", str(canary / "report.html"), str(d / "report.html"))
    as_nobody("ln", "-s", str(canary / "secret.json"), str(d / "report.md"))
    as_nobody("ln", "-s", str(canary / "charts"), str(d / "report-charts"))
    return d


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="root against a local user")


@root_only
def test_report_of_a_directory_nobody_planted_refuses_and_writes_nothing(shared):
    base, evil, canary = shared
    d = _planted(evil, canary)
    done = storprof("report", str(d))
    line = one_line_refusal(done)
    assert "meta.json is a symlink" in line or f"is owned by uid {NOBODY}" in line, line
    assert "root-secret" not in done.stdout + done.stderr
    canary_intact(canary)


@root_only
def test_report_of_nobodys_directory_into_roots_own_never_copies_a_root_only_file(shared, tmp_path):
    base, evil, canary = shared
    d = _planted(evil, canary)
    out = tmp_path / "report"
    done = storprof("report", str(d), "--out", str(out))
    one_line_refusal(done)                           # meta.json is a symlink: not read
    assert "root-secret" not in done.stdout + done.stderr
    assert not any("root-secret" in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    as_nobody("rm", str(d / "meta.json"))            # without it the report is made, in root's directory
    done = storprof("report", str(d), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").is_file() and not (out / "report.html").is_symlink()
    canary_intact(canary)


@root_only
def test_table_and_compare_never_read_through_nobodys_symlinks(shared):
    base, evil, canary = shared
    d = _planted(evil, canary)
    for argv in (["table", str(d)], ["compare", str(d), str(d)]):
        done = storprof(*argv)
        assert "meta.json is a symlink" in one_line_refusal(done)
        assert "root-secret" not in done.stdout + done.stderr
    as_nobody("rm", str(d / "results.jsonl"))
    as_nobody("ln", "-s", str(canary / "secret.json"), str(d / "results.jsonl"))
    done = storprof("table", str(d))
    assert "results.jsonl is a symlink" in one_line_refusal(done) and "root-secret" not in done.stdout
    canary_intact(canary)


def test_a_symlink_planted_in_roots_own_results_directory_is_replaced_not_written_through(results, tmp_path):
    """An earlier step (or a trusted user) left report.html, report.md and a chart as symlinks:
    the report replaces each name; the files they pointed at keep their content."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    for name in ("page", "md", "png"):
        (target / name).write_text("keep\n")
    (results / "report.html").symlink_to(target / "page")
    (results / "report.md").symlink_to(target / "md")
    (results / "report-charts").mkdir()
    (results / "report-charts" / "randread-4k-ratio-to-host.png").symlink_to(target / "png")
    done = storprof("report", str(results))
    assert done.returncode == 0, done.stderr
    assert all((target / name).read_text() == "keep\n" for name in ("page", "md", "png"))
    assert not (results / "report.html").is_symlink() and not (results / "report.md").is_symlink()
    assert not (results / "report-charts" / "randread-4k-ratio-to-host.png").is_symlink()
    assert "<html" in (results / "report.html").read_text()


def test_a_chart_directory_that_is_a_symlink_is_refused(results, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (results / "report-charts").symlink_to(tmp_path / "elsewhere")
    done = storprof("report", str(results))
    assert "report-charts is not a directory" in one_line_refusal(done)
    assert os.listdir(tmp_path / "elsewhere") == []


def test_the_results_store_does_not_truncate_through_a_planted_write_test(tmp_path):
    from storprof.results import ResultsStore
    out = tmp_path / "out"
    out.mkdir()
    keep = tmp_path / "keep"
    keep.write_text("keep\n")
    (out / f".write-test.{os.getpid()}").symlink_to(keep)
    (out / "results.jsonl").symlink_to(keep)
    (out / "meta.json").symlink_to(keep)
    from storprof.errors import UserError
    with pytest.raises(UserError, match=r"symlink|exists"):
        ResultsStore(out, {})
    os.unlink(out / f".write-test.{os.getpid()}")
    store = ResultsStore(out, {})
    assert not (out / "meta.json").is_symlink()
    from storprof.results.records import DriverRecord
    with pytest.raises(OSError):
        store.append(DriverRecord(run_id="r", driver_spec="vfs", driver="vfs", fs="ext4", status="ok"))
    assert keep.read_text() == "keep\n"


@pytest.mark.parametrize("params", [{}, {"depth": ["x"]}, {"depth": "deep"}])
def test_a_probe_whose_params_no_sweep_writes_is_one_line(tmp_path, params):
    """params are each workload's own (not typed by records.py): still one line, not a traceback."""
    d = tmp_path / "results"
    shutil.copytree(FIXTURES / "results-max-depth", d)
    lines = lines_of(d)
    for line in lines:
        if line["kind"] == "probe":
            line["params"] = {**line["params"], **params} if params else {}
    write_lines(d, lines)
    for argv in (["table", str(d)], ["compare", str(FIXTURES / "results-max-depth"), str(d)]):
        one_line_refusal(storprof(*argv))
