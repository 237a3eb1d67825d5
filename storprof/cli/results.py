"""The commands that read a results directory again: table, report and compare."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from storprof import results
from storprof.cli.options import format_option, one_line_errors, out_option, results_dir_argument, say
from storprof.errors import UserError, first_line
from storprof.results import ResultSet
from storprof.results.text import one_line
from storprof.views import tables
from storprof.views.result_summary import ResultSummary
from storprof.views.terminal import table_blocks


def views_of_input(fn):
    """For table, report and compare: every field is checked by type when read (recordcheck.py),
    but what a workload keeps in `params` is its own; a value there that no sweep writes (a depth
    that is a list, a missing key) is still one line, exit 2, saying so, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, ArithmeticError) as e:
            raise UserError(f"the results hold a value no storprof sweep writes, so they cannot be shown "
                            f"({type(e).__name__}: {one_line(first_line(e))[:200]})") from None
    return wrapper


def load_to_read(results_dir: Path) -> ResultSet:
    """A results directory for table, report and compare: read as input (results.py), and holding
    at least one record."""
    result_set = ResultSet.load(results_dir)
    if not result_set.records:
        raise UserError(f"{results_dir} holds no finished measurement (its {results.RESULTS_FILE} has no records)")
    return result_set


@click.command("table")
@results_dir_argument()
@format_option()
@one_line_errors
@views_of_input
def table(results_dir: Path, fmt: str):
    """Print the overhead table of a results directory again."""
    result_set = load_to_read(results_dir)
    say(*table_blocks(result_set, ResultSummary.of(result_set), fmt))


@click.command("report")
@results_dir_argument()
@out_option("Where report.md and report.html go [RESULTS_DIR].")
@format_option("Style of the table printed on the terminal.")
@one_line_errors
@views_of_input
def report_cmd(results_dir: Path, out: Path | None, fmt: str):
    """Write report.md and a self-contained report.html (tables, charts, flags, the machine)."""
    from storprof.views.report import write_report
    result_set = load_to_read(results_dir)
    md, page = write_report(result_set, out)
    say(*table_blocks(result_set, ResultSummary.of(result_set), fmt))
    say(f"\nReport: {page}  (and {md})")


@click.command("compare")
@results_dir_argument("a_dir")
@results_dir_argument("b_dir")
@format_option()
@click.option("--all", "show_all", is_flag=True, help="Also list the rows that are not significant.")
@click.option("--drift", "drift_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Another sweep of the same configuration on this host (repeatable): its sessions add to "
                   "the measure of the drift between sessions that a difference must exceed.")
@one_line_errors
@views_of_input
def compare_cmd(a_dir: Path, b_dir: Path, fmt: str, show_all: bool, drift_dirs: tuple[Path, ...]):
    """Did B get faster or slower than A, by more than this host's drift between sessions? (FDR 5%)"""
    from storprof.stats.compare import compare, summary_line
    result = compare(load_to_read(a_dir), load_to_read(b_dir), drift=[load_to_read(d) for d in drift_dirs])
    table = result.table
    shown = table if show_all else table[~table["verdict"].isin(["not significant"])]
    say(*[f"A and B differ in {line}" for line in result.differences], err=True)
    say(*[f"left out, not comparable: {line}" for line in result.left_out], err=True)
    say(tables.format_comparison(shown, fmt))
    say(summary_line(table) + ("" if show_all else " (--all lists the rest)"))


COMMANDS = (table, report_cmd, compare_cmd)
