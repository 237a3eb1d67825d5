"""Results written while results were schema 1 still load, and print the same tables."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOLDEN = FIXTURES / "schema-1"


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("results-*.table.*")), ids=lambda p: p.name)
def test_a_schema_1_directory_prints_the_same_table(golden):
    name, _, fmt = golden.name.partition(".table.")
    args = ["table", str(FIXTURES / name)] + ([] if fmt == "txt" else ["--format", fmt])
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == golden.read_text()


def test_every_schema_1_fixture_has_its_golden_table():
    dirs = {p.name for p in FIXTURES.glob("results-*") if (p / "results.jsonl").exists()}
    assert dirs and dirs == {p.name.partition(".table.")[0] for p in GOLDEN.glob("results-*.table.txt")}
