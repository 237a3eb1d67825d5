"""Docker's versions: read from what the binaries really printed (the line in
tests/fixtures/results-daemon-start/meta.json, the versions the results fixtures' records carry)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from storprof.engine.versions import DockerdVersion, dockerd_version, read_dockerd_version, release, short

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
META_LINE = json.loads((FIXTURES / "results-daemon-start" / "meta.json").read_text())["dockerd_version"]


def test_the_fixture_line_is_what_dockerd_prints():
    assert META_LINE == "Docker version 20.10.24+dfsg1, build 5d6db84"


@pytest.mark.parametrize("text, version", [
    (META_LINE, (20, 10, 24)),
    ("Docker version 28.5.2+dfsg4, build 3ef3c07c883be49a2e8097bcf6d2952fce1d70eb", (28, 5, 2)),
    ("Docker version 28.0.0-rc.1, build abc", (28, 0, 0)),
    ("github.com/containerd/containerd/v2 2.1.9+unknown ", (2, 1, 9)),   # containerd's, its name cut
    ("nothing here", None),
])
def test_release_is_the_number_after_version_else_the_first_dotted_one(text, version):
    assert release(text) == version


@pytest.mark.parametrize("version, expected", [
    ("20.10.24+dfsg1", "20.10.24"), ("28.5.2+dfsg4", "28.5.2"), ("28.5.2-1", "28.5.2"), ("25.0.3", "25.0.3"),
])
def test_short_is_the_release_as_docker_names_it(version, expected):
    assert short(version) == expected


def test_read_keeps_the_first_line_as_printed_and_the_release():
    said = read_dockerd_version(META_LINE + "\n")
    assert said == DockerdVersion(line=META_LINE, release=(20, 10, 24), error=None)
    assert read_dockerd_version("", META_LINE + "\n").release == (20, 10, 24)   # said on stderr


def test_read_says_why_when_there_is_no_version():
    said = read_dockerd_version("garbage\n")
    assert said.release is None and said.line == "garbage"
    assert said.error == "cannot read the dockerd version from 'garbage'"
    assert read_dockerd_version("").line is None


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "dockerd"
    path.write_text("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    return str(path)


def test_dockerd_version_runs_the_binary_it_is_given(tmp_path):
    said = dockerd_version(_script(tmp_path, f"echo '{META_LINE}'"))
    assert said == DockerdVersion(line=META_LINE, release=(20, 10, 24))


def test_dockerd_version_that_fails_is_an_error_not_an_exception(tmp_path):
    said = dockerd_version(_script(tmp_path, "echo broken >&2; exit 3"))
    assert said.line is None and said.release is None
    assert said.error.startswith("dockerd --version failed:") and "exited 3: broken" in said.error
    missing = dockerd_version(str(tmp_path / "absent"))
    assert missing.release is None and missing.error.startswith("dockerd --version failed:")
