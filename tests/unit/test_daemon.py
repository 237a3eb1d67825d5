"""How clean recognises a daemon's processes: exact argv elements, whole cgroup path components,
daemon addresses the CLI accepts (cgroup texts as this machine printed them: tests/fixtures/proc)."""

from pathlib import Path

import pytest

from storprof.engine.daemon import DOCKER_HOST, container_cgroup_ids, names_path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "proc"
EXEC = Path("/run/storprof/0123456789-0/exec")


@pytest.mark.parametrize("argv, ours", [
    (["dockerd", f"--exec-root={EXEC}", "--data-root=/x"], True),
    (["containerd", "--config", f"{EXEC}/containerd/containerd.toml"], True),
    (["containerd-shim-runc-v2", "-namespace", "moby", "-address", f"{EXEC}/containerd/containerd.sock"], True),
    (["sleep", f"x{EXEC}"], False),                          # inside another argument
    (["dockerd", f"--exec-root={EXEC}-1"], False),           # a sibling's exec root
    (["sh", "-c", f"echo {EXEC}"], False),                   # a substring of a shell line
    (["dockerd", f"--exec-root={EXEC.parent}"], False),      # above ours
    ([], False),
])
def test_a_process_is_a_daemon_s_only_by_an_argv_element_at_or_below_its_exec_root(argv, ours):
    assert names_path(argv, EXEC) is ours


def test_container_ids_come_from_whole_cgroup_path_components():
    container = (FIXTURES / "container.cgroup").read_text()
    assert container_cgroup_ids(container) == {"4e6fb90fc79080e1b8175d5f3fae97c58d8797f25c9579e88ebda0abf0eb7473"}
    assert container_cgroup_ids((FIXTURES / "host.cgroup").read_text()) == set()
    systemd = "0::/system.slice/docker-" + "a" * 64 + ".scope\n"
    assert container_cgroup_ids(systemd) == {"a" * 64}
    assert container_cgroup_ids("0::/user/docker/" + "b" * 65 + "\n") == set()
    assert container_cgroup_ids("0::/evil-" + "c" * 64 + "\n") == set()


@pytest.mark.parametrize("address, ok", [
    ("unix:///run/docker.sock", True), ("tcp://127.0.0.1:2375", True), ("ssh://me@host:22", True),
    ("ssh://host", True), ("ssh://-oProxyCommand=touch@host", False), ("ssh://me@-oProxyCommand=x", False),
    ("ssh://-host", False), ("tcp://-x:1", False), ("unix:///run/x.sock; rm -rf /", False),
    ("ssh://me@host:22 -v", False),
])
def test_daemon_addresses_never_begin_a_part_with_a_dash(address, ok):
    assert bool(DOCKER_HOST.fullmatch(address)) is ok
