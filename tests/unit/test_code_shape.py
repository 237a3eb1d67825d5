"""The shape the code keeps: short functions, modules of one concern, and one way from the CLI to the table."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 60


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_is_over_sixty_lines():
    long = [f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
            for path in sorted((ROOT / "storprof").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
            for name, line, length in _functions(path) if length > MAX_FUNCTION_LINES]
    assert long == []


def test_the_sweep_module_is_a_loop_over_sessions_and_knows_no_workload():
    """Workloads plug in through plan.workloads(); the sweep never names one."""
    source = (ROOT / "storprof" / "harness" / "sweep.py").read_text()
    for name in ("fiocells", "copyup", "deepstack", "layers", "FioCells", "CopyUp", "DeepStack", "LayerTiming"):
        assert name not in source, name


def test_no_import_cycle_between_job_files_and_placements():
    placements = (ROOT / "storprof" / "storage" / "fio" / "placements.py").read_text()
    assert "fiojob" not in placements


MAX_MODULE_LINES = 450


def test_no_module_is_over_450_lines():
    """One module per concern: one that outgrows 450 lines holds more than one."""
    long = [f"{name} ({lines} lines)"
            for path in sorted((ROOT / "storprof").rglob("*.py"))
            if (name := str(path.relative_to(ROOT)))
            and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == []


def test_the_development_guide_lists_every_module():
    """docs/development.md draws the layout; a module it leaves out is one a newcomer cannot find."""
    guide = (ROOT / "docs" / "development.md").read_text()
    missing = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "storprof").rglob("*.py"))
               if path.name != "__init__.py" and f"`{path.relative_to(ROOT)}`" not in guide]
    assert missing == []
