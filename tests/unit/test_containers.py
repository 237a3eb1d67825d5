"""One container policy for every container, and the shape of the host sandbox's command."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from storprof.engine import containers
from storprof.host import sandbox
from tests.conftest import setup_provides

PACKAGE = Path(containers.__file__).parent


class FakeContainers:
    def __init__(self):
        self.calls = []

    def run(self, image, **kw):
        self.calls.append(("run", image, kw))

    def create(self, image, **kw):
        self.calls.append(("create", image, kw))


class FakeClient:
    def __init__(self):
        self.containers = FakeContainers()


def test_every_container_gets_the_policy_and_the_label():
    client = FakeClient()
    containers.run(client, "img", labels={"storprof": "r1"}, name="a", volumes={"/x": {"bind": "/y"}})
    containers.create(client, "img", labels={"storprof": "r1"})
    containers.run(client, "img", labels={"storprof": "r1"}, command=["/bin/rm", "-rf", "/p/x"], remove=True)
    for _, _image, kw in client.containers.calls:
        assert kw["network_mode"] == "none"
        assert kw["security_opt"] == ["no-new-privileges"]
        assert kw["cap_drop"] == ["ALL"]
        assert kw["pids_limit"] == containers.PIDS_LIMIT
        assert kw["mem_limit"] == kw["memswap_limit"] == containers.MEMORY_LIMIT >= 2 << 30
        assert kw["ulimits"] == [{"name": "fsize", "soft": containers.FILE_SIZE_LIMIT,
                                  "hard": containers.FILE_SIZE_LIMIT}]
        assert kw["labels"] == {"storprof": "r1"}
        assert "cap_add" not in kw and "privileged" not in kw
    assert client.containers.calls[0][2]["detach"] is True
    assert "detach" not in client.containers.calls[2][2]


@pytest.mark.parametrize("loosen", [{"privileged": True}, {"cap_add": ["SYS_ADMIN"]}, {"network_mode": "host"},
                                    {"security_opt": []}, {"pid_mode": "host"}, {"devices": ["/dev/sda"]},
                                    {"mem_limit": None}, {"pids_limit": -1}, {"ulimits": []},
                                    {"memswap_limit": -1}])
def test_the_policy_cannot_be_loosened(loosen):
    with pytest.raises(ValueError, match="loosen"):
        containers.run(FakeClient(), "img", labels={}, **loosen)


def test_no_module_makes_a_container_past_the_policy():
    """Every container goes through containers.run/create: no other module calls the SDK's."""
    offenders = []
    for path in PACKAGE.glob("*.py"):
        if path.name == "containers.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.containers\.(run|create)\(", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


needs_bwrap = setup_provides(shutil.which("bwrap") is not None and shutil.which("fio") is not None,
                             "bubblewrap or fio is not installed")


@needs_bwrap
def test_the_sandbox_binds_only_the_program_its_libraries_the_work_dir_and_inputs(tmp_path):
    job = tmp_path / "j.fio"
    job.write_text("[j]\n")
    argv = sandbox.bwrap_argv("fio", ["--version"], [tmp_path / "work"], {"job.fio": job}, tmp_path / "work")
    assert Path(argv[0]).name == "bwrap"
    for flag in ("--unshare-all", "--die-with-parent", "--clearenv", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    binds = [(argv[i], argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    writable = [b for b in binds if b[0] == "--bind"]
    assert writable == [("--bind", str(tmp_path / "work"), str(tmp_path / "work"))]
    read_only = {inside for kind, _, inside in binds if kind == "--ro-bind"}
    assert f"{sandbox.INPUT_DIR}/job.fio" in read_only and "/usr/bin/fio" in read_only
    assert all(p.startswith(("/usr/", "/lib", sandbox.INPUT_DIR)) for p in read_only), read_only
    assert not any(p in read_only for p in ("/", "/etc", "/home", "/root", "/proc", "/sys", "/tmp"))
    assert argv[argv.index("--") + 1:] == ["/usr/bin/fio", "--version"]


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".."])
def test_sandbox_input_names_are_plain(tmp_path, name):
    with pytest.raises(ValueError):
        sandbox.bwrap_argv("fio", [], [tmp_path], {name: tmp_path / "f"}, tmp_path)
