"""The build workload's parts that need no daemon: each step's time read from a real classic
builder's output (saved from a run on overlay2), the Dockerfile, and the host's own steps."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from storprof.errors import StorprofError
from storprof.storage.build import STEPS, Build, BuildPlan, context_tar, dockerfile, step_times, write_trees

STREAM = Path(__file__).parent.parent / "fixtures" / "docker-build" / "stream-overlay2.jsonl"


def _stream() -> list[tuple[float, dict]]:
    return [(float(at), chunk) for at, chunk in (json.loads(line) for line in STREAM.read_text().splitlines())]


def test_each_step_runs_from_its_line_to_the_next_and_the_last_to_successfully_built():
    chunks = _stream()
    built = step_times(chunks, 0.0)
    assert list(built.steps) == list(STEPS)
    marks = [at for at, c in chunks if str(c.get("stream", "")).startswith("Step ")]
    end = next(at for at, c in chunks if str(c.get("stream", "")).startswith("Successfully built"))
    assert built.steps["copy source"] == pytest.approx(marks[2] - marks[1])
    assert built.steps["delete half"] == pytest.approx(marks[6] - marks[5])
    assert built.after == 1                                     # the LABEL step the run's labels add
    assert built.total == pytest.approx(end)
    assert sum(built.steps.values()) < built.total             # the context's upload and FROM come first
    assert built.image and len(built.image) >= 12


def test_a_builder_error_is_one_line_and_a_cut_stream_is_refused():
    chunks = _stream()
    error = chunks[:4] + [(9.0, {"error": "The command '/bin/sh -c chown' returned a non-zero code: 1",
                                 "errorDetail": {"message": "The command '/bin/sh -c chown' returned a non-zero "
                                                            "code: 1\nmore"}})]
    with pytest.raises(StorprofError, match=r"^docker build failed: The command .* code: 1$"):
        step_times(error, 0.0)
    with pytest.raises(StorprofError, match="without 'Successfully built'"):
        step_times(chunks[:6], 0.0)


def test_the_dockerfile_has_the_steps_in_order_and_the_context_holds_it(tmp_path):
    plan = BuildPlan(source_files=10, package_files=20, file_bytes=100)
    lines = dockerfile("storprof-build:abc").splitlines()
    assert lines[0] == "FROM storprof-build:abc" and len(lines) == len(STEPS) + 1
    write_trees(tmp_path, plan)
    context_tar(tmp_path, plan, "storprof-build:abc", tmp_path / "context.tar")
    with tarfile.open(tmp_path / "context.tar") as tar:
        names = tar.getnames()
    assert "Dockerfile" in names and "pkg.tar" in names and sum(n.startswith("src/") and "/f" in n for n in names) == 10
    with tarfile.open(tmp_path / "pkg.tar") as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
    assert len(files) == 20 and {m.size for m in files} == {100}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_the_host_runs_the_same_steps_and_deletes_half(tmp_path, monkeypatch):
    plan = BuildPlan(source_files=10, package_files=40, file_bytes=64)
    build = Build(plan, 1)
    build._work = tmp_path / "work"
    build._work.mkdir()
    write_trees(build._work, plan)
    seen = {}
    real_rmtree = __import__("shutil").rmtree

    def keep(path, *a, **k):          # look at the tree before the step's clean-up removes it
        if Path(path).name == "app" and (Path(path) / "pkg").exists():
            files = list((Path(path) / "pkg").rglob("f*"))
            seen["files"] = len(files)
            seen["owners"] = {(p.stat().st_uid, p.stat().st_gid) for p in files}
        return real_rmtree(path, *a, **k)

    monkeypatch.setattr("storprof.storage.build.shutil.rmtree", keep)
    steps = build._host_steps(tmp_path / "app")
    assert list(steps) == list(STEPS) and all(s >= 0 for s in steps.values())
    assert seen["files"] == 20 and seen["owners"] == {(1000, 1000)}
    assert not (tmp_path / "app").exists()


BUILDKIT = Path(__file__).parent.parent / "fixtures" / "docker-build" / "stream-buildkit-overlay2.jsonl"


def _buildkit() -> list[tuple[float, str]]:
    return [(float(at), line) for at, line in (json.loads(row) for row in BUILDKIT.read_text().splitlines())]


def test_buildkit_steps_take_the_time_buildkit_gives_each_and_the_build_runs_to_its_last_line():
    from storprof.storage.build import buildkit_step_times
    lines = _buildkit()
    built = buildkit_step_times(lines, 0.0)
    assert list(built.steps) == list(STEPS)
    text = "\n".join(line for _, line in lines)
    # the RUN chown -R step: its vertex and its DONE, as BuildKit printed them
    vertex = next(line.split()[0] for _, line in lines if "] RUN chown -R" in line)
    done = next(line for _, line in lines if line.startswith(f"{vertex} DONE "))
    assert built.steps["chown -R"] == float(done.split()[2].rstrip("s"))
    assert built.total == lines[-1][0] and built.after == 0
    assert built.image is not None and built.image.startswith("sha256:") and built.image in text


def test_a_buildkit_error_is_the_builds_failure_with_buildkits_words():
    from storprof.storage.build import buildkit_step_times
    lines = [*_buildkit()[:30], (1.0, "#8 ERROR: executor failed running [/bin/sh -c tar -xf /tmp/pkg.tar -C /app]: "
                                      "network bridge not found")]
    with pytest.raises(StorprofError, match="network bridge not found"):
        buildkit_step_times(lines, 0.0)
    with pytest.raises(StorprofError, match=r"BuildKit finished \d of 6 steps"):
        buildkit_step_times(_buildkit()[:30], 0.0)
