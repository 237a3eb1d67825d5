"""Docker engines a sweep can start: the system's dockerd, and newer ones fetched into a cache.

A newer engine comes from Debian's own packages (docker.io and containerd of the unstable suite),
downloaded with a private apt state and unpacked with dpkg-deb into a directory of storprof's
cache: nothing of the system's packages is replaced. Its dockerd runs with the cache's bin
directories first on PATH, so it starts its own containerd and shims; runc stays the system's
(that suite's runc needs a newer glibc than Debian 12's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from storprof.engine import versions
from storprof.errors import MissingTool, StorprofError, UserError
from storprof.host import proc, safepath

# storprof's cache; STORPROF_CACHE puts it elsewhere (a test's own empty directory, a fleet host's disk).
DEFAULT_CACHE = Path("/var/cache/storprof")
CACHE_ENV = "STORPROF_CACHE"
SYSTEM = "system"
FETCH_SUITE = "unstable"
FETCH_MIRROR = "http://deb.debian.org/debian"
FETCH_PACKAGES = ("docker.io", "containerd")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The first Docker release with the containerd image store (the containerd-snapshotter feature).
CONTAINERD_STORE_SINCE = (24,)
ENGINE_NAME = re.compile(r"system|\d{1,3}(?:\.\d{1,3}){0,2}")
@dataclass(frozen=True)
class Engine:
    """One dockerd a session can start, and where its helpers come from."""

    name: str                                   # SYSTEM, or the dockerd version ("28.5.2")
    dockerd: str
    version: tuple[int, ...]
    bin_dirs: tuple[str, ...] = ()              # first on dockerd's PATH: its containerd and shims
    containerd_version: str = ""
    source: str = "system packages"
    packages: tuple[dict, ...] = field(default=(), compare=False)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def containerd_store(self) -> bool:
        return self.version >= CONTAINERD_STORE_SINCE

    def env(self) -> dict[str, str]:
        """dockerd's environment: the engine's own binaries before the system's."""
        path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        return {**os.environ, "PATH": ":".join([*self.bin_dirs, path])}


def system_engine() -> Engine | None:
    try:
        dockerd = proc.require("dockerd")
    except MissingTool:
        return None
    version = versions.dockerd_version(dockerd).release
    if version is None:
        return None
    containerd = shutil.which("containerd") or ""
    return Engine(SYSTEM, dockerd, version, (), _containerd_version(containerd) if containerd else "")


def _containerd_version(binary: str) -> str:
    try:
        out = proc.run([binary, "--version"], timeout=30)
    except StorprofError:
        return ""
    v = versions.release(out.stdout.replace("containerd", "", 1))
    return ".".join(map(str, v)) if v else ""


def cache_dir() -> Path:
    """Where fetched engines live: `engines/` in storprof's cache (STORPROF_CACHE, else
    /var/cache/storprof). Their dockerd runs as root, so the cache must be below directories root
    owns and nobody else can write (not even sudo's caller, whom a --workdir may belong to);
    else a one-line UserError."""
    raw = os.environ.get(CACHE_ENV, "")
    if raw and not os.path.isabs(raw):
        raise UserError(f"{CACHE_ENV}={raw!r}: give an absolute path")
    root = Path(raw) if raw else DEFAULT_CACHE
    return safepath.require_safe(root / "engines", f"the engine cache ({CACHE_ENV})" if raw else "the engine cache",
                                 trusted=frozenset({0}))


def cached_engines(cache: Path | None = None) -> list[Engine]:
    """The engines `storprof engines fetch` unpacked, newest first; a directory that is not
    root's alone (writable by others) is not trusted to run as root, and is left out."""
    cache = cache_dir() if cache is None else cache
    out: list[Engine] = []
    if not cache.is_dir():
        return out
    for d in sorted(cache.iterdir()):
        meta = d / "engine.json"
        if not meta.is_file() or not _trusted(d):
            continue
        try:
            info = json.loads(meta.read_text())
            version = tuple(int(x) for x in info["dockerd_version"].split("."))
        except (ValueError, KeyError, OSError):
            continue
        root = d / "root"
        out.append(Engine(info["dockerd_version"], str(root / "usr/sbin/dockerd"), version,
                          (str(root / "usr/bin"), str(root / "usr/sbin")), info.get("containerd_version", ""),
                          f"Debian {info.get('suite', '?')} packages in {d}", tuple(info.get("packages", ()))))
    return sorted(out, key=lambda e: e.version, reverse=True)


def _trusted(path: Path) -> bool:
    for p in (path, path.parent):
        st = p.stat()
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
    return True


def all_engines(cache: Path | None = None) -> list[Engine]:
    system = system_engine()
    return ([system] if system else []) + cached_engines(cache)


def find(name: str, engines: list[Engine]) -> Engine:
    """The engine a spec names: SYSTEM, or a version or its prefix ('28', '28.5')."""
    if not ENGINE_NAME.fullmatch(name):
        raise UserError(f"engine {name!r} is not 'system' or a version such as 28.5.2")
    for e in engines:
        if name == e.name or (name != SYSTEM and (e.version_text == name or e.version_text.startswith(name + "."))):
            return e
    known = ", ".join(f"{e.name} ({e.version_text})" for e in engines) or "none"
    raise UserError(f"no Docker engine {name} here (have: {known}); storprof engines fetch gets a newer one")


def newest_with_containerd_store(engines: list[Engine]) -> Engine | None:
    capable = [e for e in engines if e.containerd_store]
    return max(capable, key=lambda e: e.version) if capable else None


def as_json(engines: list[Engine], cache: Path) -> dict:
    """`storprof engines --format json`: the facts a script decides on (is there an engine with the
    containerd image store?), instead of the table's prose."""
    newest = newest_with_containerd_store(engines)
    return {"cache": str(cache), "containerd_store": newest.name if newest else None,
            "engines": [{"name": e.name, "dockerd": e.dockerd, "version": e.version_text,
                         "containerd_version": e.containerd_version or None,
                         "image_stores": ["graphdrivers"] + (["containerd"] if e.containerd_store else []),
                         "source": e.source} for e in engines]}


# --------------------------------------------------------------------------- fetching

def fetch(cache: Path | None = None, suite: str = FETCH_SUITE,
          say: Callable[[str], None] = lambda line: None) -> tuple[Engine, bool]:
    """Download docker.io and containerd of `suite` and unpack them into the cache; returns the
    engine and whether it was new. Never touches the system's packages or apt state."""
    cache = cache_dir() if cache is None else cache
    if os.geteuid() != 0:
        raise StorprofError(f"storprof engines fetch writes to {cache}: run it as root")
    for tool in ("apt-get", "dpkg-deb"):
        proc.require(tool)
    safepath.make_private_dir(cache, "the engine cache", mode=0o755)
    with tempfile.TemporaryDirectory(prefix="storprof-fetch-", dir=cache) as tmp:
        work = Path(tmp)
        debs = _download(work, suite, say)
        packages = [_describe(deb) for deb in debs]
        root = work / "root"
        for deb in debs:
            proc.run(["dpkg-deb", "-x", str(deb), str(root)], timeout=300)
        said = versions.dockerd_version(str(root / "usr/sbin/dockerd"))
        version = said.release
        if version is None:
            raise StorprofError(f"the fetched dockerd does not say its version: {said.error}")
        name = ".".join(map(str, version))
        target = cache / name
        if (target / "engine.json").is_file():
            say(f"engine {name} is already in {target}")
            return next(e for e in cached_engines(cache) if e.name == name), False
        containerd = _containerd_version(str(root / "usr/bin/containerd"))
        for unwanted in ("usr/sbin/runc", "usr/bin/runc"):      # the system's runc serves every engine
            (root / unwanted).unlink(missing_ok=True)
        (work / "engine.json").write_text(json.dumps(
            {"dockerd_version": name, "containerd_version": containerd, "suite": suite, "mirror": FETCH_MIRROR,
             "packages": packages}, indent=2) + "\n")
        target.mkdir(mode=0o755)
        os.replace(root, target / "root")
        os.replace(work / "engine.json", target / "engine.json")
    for p in packages:
        say(f"took {p['package']} {p['version']} ({p['sha256'][:16]}…) from Debian {suite}")
    return next(e for e in cached_engines(cache) if e.name == name), True


def _download(work: Path, suite: str, say: Callable[[str], None]) -> list[Path]:
    """apt-get download with a sources list, lists and cache of its own."""
    (work / "lists/partial").mkdir(parents=True)
    (work / "archives/partial").mkdir(parents=True)
    (work / "debs").mkdir()
    (work / "sources.list").write_text(f"deb [signed-by={KEYRING}] {FETCH_MIRROR} {suite} main\n")
    opts = ["-o", f"Dir::Etc::sourcelist={work / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache={work}",
            "-o", "Dir::Cache::archives=archives", "-o", "APT::Get::List-Cleanup=0", "-qq"]
    say(f"reading the package lists of Debian {suite} ({FETCH_MIRROR})")
    proc.run(["apt-get", *opts, "update"], timeout=600)
    say(f"downloading {' and '.join(FETCH_PACKAGES)}")
    done = proc.run(["apt-get", *opts, "download", *FETCH_PACKAGES], timeout=900, check=False,
                    cwd=work / "debs")
    if done.returncode != 0:
        raise StorprofError(f"apt-get download failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    debs = sorted((work / "debs").glob("*.deb"))
    if len(debs) != len(FETCH_PACKAGES):
        raise StorprofError(f"apt-get download gave {len(debs)} packages, expected {len(FETCH_PACKAGES)}")
    return debs


def _describe(deb: Path) -> dict:
    fields = proc.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], timeout=60).stdout
    values = dict(line.split(": ", 1) for line in fields.strip().splitlines() if ": " in line)
    return {"package": values.get("Package", deb.name), "version": values.get("Version", "?"),
            "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(), "file": deb.name}
