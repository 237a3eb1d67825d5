"""storprof report on a real quick sweep saved under tests/fixtures/results-union: every section,
every chart, the flags and the machine, in report.html (self-contained) and report.md."""

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli
from storprof.results import ResultSet
from storprof.stats import summary
from storprof.views import tables
from storprof.views.report import CHART_DIR, write_report

SWEEP = Path(__file__).parent.parent / "fixtures" / "results-union"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    md, page = write_report(SWEEP, out)
    return md.read_text(), page.read_text(), out


SECTIONS = ("The answer", "Heat map", "Overhead against the host", "Latency percentiles", "Union operations",
            "Layer timing", "Per driver spec", "Drivers", "Machine and run")


def test_every_section_is_in_both_documents_in_reading_order_with_contents(written):
    md, page, _ = written
    assert re.findall(r"<h2>(.*?)</h2>", page) == list(SECTIONS)
    assert re.findall(r"^## (.*)$", md, re.M) == list(SECTIONS)
    nav = re.search(r"<nav>(.*?)</nav>", page).group(1)
    assert re.findall(r"href='#([^']+)'", nav) == re.findall(r"<section id='([^']+)'>", page)


def test_the_answer_comes_first_and_the_heat_map_is_the_first_picture(written):
    _, page, _ = written
    answer = page.index("<h2>The answer</h2>")
    assert answer < page.index("<img")
    assert re.findall(r"<figcaption>(.*?)</figcaption>", page)[0].startswith("Heat map")
    cases = re.findall(r"<li><b>(.*?)</b>", page[answer:page.index("</section>", answer)])
    # the answer by use case first (this sweep ran no union-ops probe: no builds line)
    assert cases == ["Databases:", "Dense hosting:", "Not measured by this run:"]
    assert "Fastest 4 KiB random writes on the top layer" in page
    per_spec = page.index("<h2>Per driver spec</h2>")                            # the sentences below the tables
    assert page.index("<h2>Layer timing</h2>") < per_spec
    items = re.findall(r"<li><b>(.*?)</b> \(Docker", page[per_spec:page.index("</section>", per_spec)])
    assert items == list(dict.fromkeys(ResultSet.load(SWEEP).runs["driver_spec"]))


def test_each_section_has_its_chart_before_its_table_and_long_tables_are_collapsed(written):
    _, page, _ = written
    for name in ("Overhead against the host", "Union operations", "Layer timing"):
        start = page.index(f"<h2>{name}</h2>")
        section = page[start:page.index("</section>", start)]
        assert "<img" in section and "<table>" in section and section.index("<img") < section.index("<table>")
        assert "<details><summary>The table:" in section


def test_one_ratio_and_one_latency_chart_per_fio_job_and_the_probe_and_layer_charts(written):
    md, page, out = written
    jobs = list(dict.fromkeys(ResultSet.load(SWEEP).runs.query("primary_metric != 'time'")["job"]))
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    for job in jobs:
        assert f"{job}: ratio to host" in captions
        assert f"{job}: latency p50 / p99 / p99.9" in captions
    for caption in ("Copy-up time by file size", "Deep-stack lookup by depth", "Commit time by layer size",
                    "Container create time by image depth", "Space used per container"):
        assert caption in captions
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == len(captions) == len(re.findall(r"!\[", md))
    assert "Heat map: throughput ratio to host per driver spec and job" in captions
    assert all(base64.b64decode(i).startswith(PNG) for i in images)           # embedded, self-contained
    assert "src='http" not in page and "<script" not in page and "href='http" not in page
    assert not re.search(r"(src|href)=['\"](?!data:|#)", page)                 # nothing fetched from anywhere
    assert all((out / CHART_DIR / Path(p).name).read_bytes().startswith(PNG)
               for p in re.findall(r"\]\((" + CHART_DIR + r"/[^)]+)\)", md))


def test_the_tables_are_the_same_in_markdown_html_and_the_terminal(written):
    md, page, _ = written
    over = summary.summarize(ResultSet.load(SWEEP).runs)
    _, rows = tables.table_rows(over[over["metric"] != "time"])
    for row in rows:
        assert "| " + " | ".join(row) in md.replace("  ", " ") or all(cell in md for cell in row)
        assert all(cell.replace("&", "&amp;") in page for cell in row)


def test_flags_and_machine_metadata_are_shown(written):
    md, page, _ = written
    used = set("".join(summary.summarize(ResultSet.load(SWEEP).runs)["flags"]))
    assert used, "the fixture sweep has flagged cells (fuse-overlayfs)"
    for line in tables.flag_notes(used):
        assert line in md
    for field in ("kernel", "cpu_model", "mem_total", "storprof_version", "command"):
        assert re.search(rf"\| {field} +\|", md) and re.search(rf"<td>\s*{field}\s*</td>", page)


def test_report_command_writes_both_files_and_prints_the_table(tmp_path):
    result = CliRunner().invoke(cli.main, ["report", str(SWEEP), "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    assert "Report: " in result.output and "randread-4k" in result.output


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "plain"])
def test_table_formats(fmt):
    result = CliRunner().invoke(cli.main, ["table", str(SWEEP), "--format", fmt], catch_exceptions=False)
    assert result.exit_code == 0 and "randread-4k" in result.output
    if fmt == "json":
        import json
        data = json.loads(result.output)
        assert {"overhead", "layers", "layer_growth", "drivers"} <= set(data)
    if fmt == "markdown":
        assert result.output.lstrip().startswith("| driver")


def test_bad_directories_give_one_line(tmp_path):
    result = CliRunner().invoke(cli.main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a storprof results directory" in result.stderr
    (tmp_path / "results.jsonl").write_text("")
    result = CliRunner().invoke(cli.main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no finished measurement" in result.stderr


def test_report_into_a_place_that_cannot_hold_it_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(cli.main, ["report", str(SWEEP), "--out", str(blocker)])
    assert result.exit_code == 2 and "cannot write the report into" in result.stderr
    result = CliRunner().invoke(cli.main, ["report", str(blocker)])
    assert result.exit_code == 2 and "not a storprof results directory" in result.stderr
