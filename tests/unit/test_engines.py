"""Engines: the cache read and trusted only when it is root's alone, and engine names checked
against what is allowed (versions are read in engine/versions, tests in test_versions)."""

from __future__ import annotations

import json
import os

import pytest

from storprof.engine import engines
from storprof.engine.engines import SYSTEM, Engine, cached_engines, find
from storprof.errors import UserError


def _cache_with(tmp_path, name: str, mode: int = 0o755):
    cache = tmp_path / "engines"
    d = cache / name
    (d / "root/usr/sbin").mkdir(parents=True)
    (d / "engine.json").write_text(json.dumps({"dockerd_version": name, "containerd_version": "2.1.9",
                                               "suite": "unstable", "packages": [{"package": "docker.io"}]}))
    os.chmod(cache, 0o755)
    os.chmod(d, mode)
    return cache


@pytest.mark.skipif(os.geteuid() != 0, reason="the cache must be root's")
def test_a_cached_engine_is_read_with_its_bin_directories_first_on_path(tmp_path):
    os.chmod(tmp_path, 0o755)
    cache = _cache_with(tmp_path, "28.5.2")
    [engine] = cached_engines(cache)
    assert engine.name == "28.5.2" and engine.version == (28, 5, 2) and engine.containerd_store
    assert engine.dockerd == str(cache / "28.5.2/root/usr/sbin/dockerd")
    assert engine.env()["PATH"].split(":")[:2] == [str(cache / "28.5.2/root/usr/bin"),
                                                    str(cache / "28.5.2/root/usr/sbin")]


@pytest.mark.skipif(os.geteuid() != 0, reason="the cache must be root's")
def test_an_engine_directory_others_can_write_is_not_trusted_to_run_as_root(tmp_path):
    os.chmod(tmp_path, 0o755)
    assert cached_engines(_cache_with(tmp_path, "28.5.2", mode=0o777)) == []


def test_engine_names_are_versions_or_system():
    have = [Engine(SYSTEM, "/usr/sbin/dockerd", (20, 10, 24)), Engine("28.5.2", "/x/dockerd", (28, 5, 2))]
    assert find("28", have).name == "28.5.2" and find("28.5", have).name == "28.5.2"
    assert find("system", have).name == SYSTEM
    assert find("20.10.24", have).name == SYSTEM
    for bad in ("../../bin/sh", "28.5.2;id", "", "2" * 5):
        with pytest.raises(UserError):
            find(bad, have)
    with pytest.raises(UserError, match="storprof engines fetch"):
        find("29", have)


def test_only_engines_from_24_have_the_containerd_store():
    assert not Engine(SYSTEM, "d", (20, 10, 24)).containerd_store
    assert Engine("24.0.7", "d", (24, 0, 7)).containerd_store
    assert engines.newest_with_containerd_store([Engine(SYSTEM, "d", (20, 10, 24))]) is None


def test_the_cache_is_storprof_s_own_unless_storprof_cache_moves_it(monkeypatch, tmp_path):
    monkeypatch.delenv(engines.CACHE_ENV, raising=False)
    assert engines.cache_dir() == engines.DEFAULT_CACHE / "engines"
    monkeypatch.setenv(engines.CACHE_ENV, "relative/cache")
    with pytest.raises(UserError, match="absolute path"):
        engines.cache_dir()
    monkeypatch.setenv(engines.CACHE_ENV, "/tmp")                        # mode 1777: anyone could plant a dockerd
    with pytest.raises(UserError, match="writable by others"):
        engines.cache_dir()
    if os.geteuid() == 0:                                               # tmp_path is below root's 0700 dir
        monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path))
        assert engines.cache_dir() == tmp_path / "engines" and cached_engines() == []
        callers = tmp_path / "caller-s"                                 # sudo's caller may own a --workdir,
        callers.mkdir()                                                 # not the cache of a dockerd run as root
        os.chown(callers, 65534, 65534)
        monkeypatch.setenv("SUDO_UID", "65534")
        monkeypatch.setenv(engines.CACHE_ENV, str(callers))
        with pytest.raises(UserError, match="owned by uid 65534"):
            engines.cache_dir()


def test_engines_as_json_say_which_has_the_containerd_store():
    have = [Engine(SYSTEM, "/usr/sbin/dockerd", (20, 10, 24), containerd_version="1.6.20"),
            Engine("28.5.2", "/c/28.5.2/root/usr/sbin/dockerd", (28, 5, 2), containerd_version="2.1.9")]
    data = engines.as_json(have, engines.DEFAULT_CACHE / "engines")
    assert data["containerd_store"] == "28.5.2"
    assert [e["image_stores"] for e in data["engines"]] == [["graphdrivers"], ["graphdrivers", "containerd"]]
    assert json.loads(json.dumps(data)) == data
    assert engines.as_json(have[:1], engines.DEFAULT_CACHE)["containerd_store"] is None
