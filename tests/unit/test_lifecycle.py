"""harness/lifecycle.owned_run: the run's ownership record and scratch directory, for sweep and net."""

import pytest

from storprof.harness import state
from storprof.harness.lifecycle import owned_run

RUN_ID = "abc1230000"


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "work"
    path.mkdir(mode=0o700)
    return path


def test_the_run_dir_is_recorded_before_it_is_made_and_gone_with_the_record_after(workdir):
    said = []
    with owned_run(workdir, RUN_ID, said.append) as run:
        records = state._read(run.layout, run.path).records
        assert [r["kind"] for r in records] == ["run", "dir"]
        assert records[1]["path"] == str(workdir / RUN_ID)
        (workdir / RUN_ID).mkdir(mode=0o700)
        (workdir / RUN_ID / "report.lua").write_text("x")
    assert not (workdir / RUN_ID).exists() and not run.path.exists()
    assert said == []


def test_an_error_still_cleans_up_and_names_what_it_could_not_remove(workdir):
    said = []
    with pytest.raises(KeyboardInterrupt), owned_run(workdir, RUN_ID, said.append) as run:
        run.record("dir", what="net", role="nat", index=0, path=str(workdir / "elsewhere"))
        (workdir / "elsewhere").mkdir()
        raise KeyboardInterrupt
    assert not (workdir / RUN_ID).exists()
    assert len(said) == 1 and said[0].startswith("left behind: ") and f"storprof clean --workdir {workdir}" in said[0]


def test_leftovers_of_a_killed_run_are_named_before_the_next_starts(workdir):
    dead = state.RunState(workdir, "dead000000", ["storprof", "net"])
    dead.record("dir", what="run", path=str(workdir / "dead000000"))
    dead.path.write_text(dead.path.read_text().replace(f'"pid": {__import__("os").getpid()}', '"pid": 999999999'))
    said = []
    with owned_run(workdir, RUN_ID, said.append):
        pass
    assert said and "dead000000" in said[0] and "killed run" in said[0]
