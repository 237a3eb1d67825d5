"""Build: what a driver costs a `docker build`, step by step, against the same steps on the host.

A CI job's image build copies a source tree of many small files in, unpacks a package tree of
tens of thousands of small files (node_modules or site-packages sized), chowns it (`chown -R`, which
on a union filesystem copies every file up into the new layer) and deletes half of it. Each RUN
step of the classic builder runs in a container of the image so far and is committed as a layer,
so a driver that copies (vfs) pays for every step. The Dockerfile and its context are storprof's
own, from local content only; the image is built offline from the host's sh, tar, chown and find,
the very binaries the host baseline runs the same steps with in a plain directory of the same
backing filesystem. Each step's time comes from the builder's own output (from one step's line to
the next), each layer's size from the image's history. BuildKit needs a session the SDK does not
have, so where a docker CLI with BuildKit's client is here (Docker 20.10's has it built in; a newer
one needs its buildx plugin) the build goes through it (`DOCKER_BUILDKIT=1 docker build
--progress=plain`, each step's time BuildKit's own, to a tenth of a second); else the classic
builder's API. Every row records which (`params.builder`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from storprof.engine.image import BenchImage, plan_rootfs
from storprof.errors import StorprofError, UserError, first_line
from storprof.harness.workload import Done, Sink, Unit
from storprof.host import safepath
from storprof.results.records import ProbeRecord
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.lowerlayer import remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "build"
SUBDIR = "build"
BUILDER = "classic"
BUILDKIT = "buildkit"
TOOLS = ("sh", "tar", "chown", "find", "rm", "sleep")
# The Dockerfile's steps after FROM, in order, by the names their rows carry.
STEPS = ("copy source", "copy package", "unpack", "chown -R", "delete half")
TOTAL = "total"
OWNER = "1000:1000"
# Files whose number ends in an even digit: half of them.
HALF = "*[02468]"


@dataclass(frozen=True)
class BuildPlan:
    source_files: int = 2000       # the COPY'd source tree: files of source_bytes
    package_files: int = 30000     # the unpacked package tree: files of package_bytes
    file_bytes: int = 1024

    def validate(self) -> None:
        if not (1 <= self.source_files <= 200000 and 2 <= self.package_files <= 200000
                and 1 <= self.file_bytes <= 1 << 20):
            raise UserError("the build workload takes 1-200000 source files, 2-200000 package files "
                            "and files of 1 B-1 MiB")

    def bytes_needed(self) -> int:
        """The context (tree and tarball), the host's copy, and each step's layer: vfs copies all
        of it per step."""
        tree = (self.source_files + self.package_files) * max(4096, self.file_bytes)
        return 12 * tree


def dockerfile(base: str) -> str:
    return (f"FROM {base}\n"
            "COPY src /app/src\n"
            "COPY pkg.tar /tmp/pkg.tar\n"
            "RUN tar -xf /tmp/pkg.tar -C /app && rm /tmp/pkg.tar\n"
            f"RUN chown -R {OWNER} /app\n"
            f"RUN find /app/pkg -type f -name '{HALF}' -delete\n")


def row(plan: BuildPlan, operation: str) -> dict:
    """The fields that name one row: a step (or the total) of the build of this plan's trees."""
    return {"workload": WORKLOAD, "operation": operation, "files": plan.package_files,
            "file_bytes": plan.file_bytes}


def write_trees(root: Path, plan: BuildPlan) -> None:
    """src/ (the source tree) and pkg.tar (the package tree, pkg/d<j>/f<i>) under `root`."""
    data = b"\x5a" * plan.file_bytes
    for i in range(plan.source_files):
        d = root / "src" / f"d{i % 32}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(data)
    with tarfile.open(root / "pkg.tar", "w") as tar:
        for j in range(64):
            info = tarfile.TarInfo(f"pkg/d{j}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for i in range(plan.package_files):
            info = tarfile.TarInfo(f"pkg/d{i % 64}/f{i}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, _Bytes(data))


class _Bytes:
    """A file object tarfile reads one small file's bytes from."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.at:] if n < 0 else self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk


def context_tar(root: Path, plan: BuildPlan, base: str, path: Path) -> None:
    """The build context: the Dockerfile, src/ and pkg.tar, as the tar the builder's API takes."""
    with tarfile.open(path, "w") as tar:
        text = dockerfile(base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, _Bytes(text))
        tar.add(root / "src", arcname="src")
        tar.add(root / "pkg.tar", arcname="pkg.tar")


@dataclass(frozen=True)
class Built:
    """One build: each step's seconds (by STEPS' names), the whole build's, the image."""

    steps: dict[str, float]
    total: float
    image: str | None
    after: int = 0       # the builder's own steps after the Dockerfile's (a LABEL step for the run's labels)


def step_times(chunks: Iterable[tuple[float, dict]], started: float) -> Built:
    """Each step's seconds from the classic builder's output, as (arrival time, decoded chunk):
    a step runs from its 'Step k/n' line to the next one, the last to 'Successfully built'. An
    error chunk raises StorprofError with the builder's message."""
    marks: list[tuple[int, float]] = []
    image, ended = None, None
    for at, chunk in chunks:
        if "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise StorprofError(f"docker build failed: {_first(detail.get('message') or chunk['error'])}")
        text = str(chunk.get("stream") or "")
        for line in text.splitlines():
            if line.startswith("Step ") and "/" in line.split(" ", 2)[1]:
                marks.append((int(line.split(" ", 2)[1].split("/")[0]), at))
            elif line.startswith("Successfully built "):
                image, ended = line.split()[-1], at
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image = image or str(aux["ID"])
    if ended is None or len(marks) < len(STEPS) + 1:
        raise StorprofError(f"docker build ended after {len(marks)} of {len(STEPS) + 1} steps without "
                            "'Successfully built'")
    # marks[0] is FROM; the builder appends a step of its own for the labels asked for
    bounds = [at for _, at in marks] + [ended]
    steps = {name: bounds[i + 2] - bounds[i + 1] for i, name in enumerate(STEPS)}
    return Built(steps, ended - started, image, len(marks) - len(STEPS) - 1)


def layer_sizes(client, built: Built) -> list[int]:
    """The sizes of the steps' layers, oldest first: the image's history, newest first, past the
    builder's own steps."""
    history = client.api.history(built.image)
    return [int(h.get("Size") or 0) for h in history[built.after:built.after + len(STEPS)]][::-1]


def buildkit_cli() -> str | None:
    """A docker CLI whose `build` speaks BuildKit: a 20.10-22.x one (its client is built in), or a
    newer one with the buildx plugin. None: the classic builder it is."""
    for cli in dict.fromkeys(c for c in (shutil.which("docker"), "/usr/bin/docker") if c and os.path.isfile(c)):
        try:
            done = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=30,
                                  env={"PATH": os.defpath})
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = re.match(r"Docker version (\d+)\.", done.stdout)
        if major and 20 <= int(major.group(1)) < 23:
            return cli
        if major and subprocess.run([cli, "buildx", "version"], capture_output=True, timeout=30,
                                    env={"PATH": os.defpath}).returncode == 0:
            return cli
    return None


_VERTEX = re.compile(r"^#(\d+) \[(\d+)/(\d+)\] ")
_DONE = re.compile(r"^#(\d+) DONE ([0-9.]+)s")
_ERROR = re.compile(r"^#\d+ ERROR: (.*)")
_IMAGE = re.compile(r"writing image (sha256:[0-9a-f]+)")


def buildkit_step_times(lines: Iterable[tuple[float, str]], started: float) -> Built:
    """Each step's seconds from BuildKit's plain progress, as (arrival time, line): a step is the
    vertex printed as '[k/n]' (k=1 is FROM), its time the 'DONE' BuildKit gives it; the whole build
    runs to the last line. An ERROR line raises StorprofError with BuildKit's message."""
    step_of: dict[int, int] = {}
    done: dict[int, float] = {}
    image, ended = None, started
    for at, line in lines:
        ended = at
        if m := _VERTEX.match(line):
            step_of[int(m.group(1))] = int(m.group(2))
        elif m := _DONE.match(line):
            done[int(m.group(1))] = float(m.group(2))
        elif m := _ERROR.match(line):
            raise StorprofError(f"docker build failed: {m.group(1)}")
        elif m := _IMAGE.search(line):
            image = m.group(1)
    seconds = {k: done[v] for v, k in step_of.items() if v in done}
    if any(k + 2 not in seconds for k in range(len(STEPS))):
        raise StorprofError(f"BuildKit finished {len(seconds)} of {len(STEPS) + 1} steps")
    return Built({name: seconds[i + 2] for i, name in enumerate(STEPS)}, ended - started, image)


class Build:
    """Per repeat, the steps on the host and a `docker build` without cache, in alternating order."""

    name = WORKLOAD

    def __init__(self, plan: BuildPlan, repeat: int, sides: tuple[str, ...] = ("host", "union")):
        self.plan = plan
        self.repeat = repeat
        self.sides = sides
        self._work: Path | None = None         # the trees and the context, beside the host directory
        self._image: BenchImage | None = None
        self._skip = ""
        self._cli: str | None = None           # a docker CLI with BuildKit, if here

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(PROBE, r.context.driver_spec, r.identity, r.placement, r.repeat)
                for r in results.of(ProbeRecord) if r.workload == WORKLOAD}

    def _key(self, spec: str, placement: str, repeat: int) -> tuple:
        return (PROBE, spec, ProbeRecord.identity_of(**row(self.plan, TOTAL)), placement, repeat)

    def units(self, spec: str, done: Done) -> list[Unit]:
        units = [Unit(WORKLOAD, "build", p, r, self._key(spec, p, r))
                 for r in range(self.repeat) for p in (self.sides if r % 2 == 0 else self.sides[::-1])]
        return [u for u in units if u.key not in done]

    def group_of(self, record) -> str | None:
        return "build" if isinstance(record, ProbeRecord) and record.workload == WORKLOAD else None

    def extra_round(self, spec: str, group: str, repeat: int) -> list[Unit]:
        order = self.sides if repeat % 2 == 0 else self.sides[::-1]
        return [Unit(WORKLOAD, group, p, repeat, self._key(spec, p, repeat)) for p in order]

    def prepare(self, session: Session, sink: Sink) -> None:
        p = self.plan
        self._cli = buildkit_cli()
        sink.message(f"[{session.label}] build: COPY {p.source_files} files, unpack {p.package_files}, chown -R, "
                     f"delete half; {BUILDKIT if self._cli else BUILDER} builder, no cache, the same steps on the host")
        # on the spec's backing filesystem beside the host's directory, where the host copies from
        parent = session.host_dir.parent if session.host_dir is not None else (session.scratch or session.run_dir)
        self._work = safepath.make_private_dir(parent / f"{session.name_prefix}-build", "build context")
        write_trees(self._work, p)
        self._image = BenchImage(session.daemon.client, session.labels, repository="storprof-build")
        base = self._image.ensure(plan_rootfs(TOOLS, dirs=("tmp", "app")), session.scratch)
        context_tar(self._work, p, base, self._work / "context.tar")
        if self._cli:       # the CLI takes a directory: the Dockerfile beside the trees, the tar left out
            (self._work / "Dockerfile").write_text(dockerfile(base))
            (self._work / ".dockerignore").write_text("context.tar\n")
        if "host" in self.sides and session.host_dir is None:
            raise StorprofError(f"[{session.label}] the build has no host directory in this session")

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        if self._skip:
            return f"skipped: {self._skip}"
        if unit.placement == "host":
            assert session.host_dir is not None
            steps = self._host_steps(session.host_dir / SUBDIR)
            built = Built(steps, sum(steps.values()), None)
            sizes: list[int | None] = [None] * len(STEPS)
            params = {"builder": "host commands"}
        else:
            try:
                built = self._buildkit_build(session) if self._cli else self._docker_build(session)
            except StorprofError as e:      # this engine's builder cannot: the spec's other workloads go on
                self._skip = str(e)
                sink.message(f"[{session.label}] build: skipped: {self._skip}")
                return f"skipped: {self._skip}"
            client = session.daemon.client
            try:
                sizes = list(layer_sizes(client, built))
            finally:
                remove_image(client, built.image)
            params = {"builder": BUILDKIT if self._cli else BUILDER}
        for (name, seconds), size in zip(built.steps.items(), sizes):
            sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                                  seconds=seconds, bytes=size, params=params, **row(self.plan, name)))
        sink.emit(ProbeRecord(context=session.context, placement=unit.placement, repeat=unit.repeat,
                              seconds=built.total, params=params, **row(self.plan, TOTAL)))
        return f"total {built.total:.2f} s: " + ", ".join(f"{n} {s:.2f} s" for n, s in built.steps.items())

    def _docker_build(self, session: Session) -> Built:
        assert self._work is not None
        client = session.daemon.client
        started = time.monotonic()
        with open(self._work / "context.tar", "rb") as context:
            try:
                stream = client.api.build(fileobj=context, custom_context=True, nocache=True, rm=True, forcerm=True,
                                          pull=False, labels=session.labels, decode=True)
                return step_times(((time.monotonic(), chunk) for chunk in stream), started)
            except docker.errors.DockerException as e:
                raise StorprofError(f"docker build failed: {first_line(e)}") from None

    def _buildkit_build(self, session: Session) -> Built:
        """The build through the docker CLI's BuildKit client, RUN steps without a network (storprof's
        daemons have no bridge), its own config directory (not root's ~/.docker)."""
        assert self._work is not None and self._cli is not None
        config = safepath.make_private_dir(self._work / "docker-config", "docker CLI config")
        labels = [arg for k, v in session.labels.items() for arg in ("--label", f"{k}={v}")]
        tag = f"{session.name_prefix}-build:latest"
        argv = ["timeout", "--kill-after=5", "3600", self._cli, "-H", session.daemon.base_url, "build", "--no-cache",
                "--network=none", "--progress=plain", "-t", tag, *labels, str(self._work)]
        env = {"PATH": os.defpath, "DOCKER_BUILDKIT": "1", "DOCKER_CONFIG": str(config), "HOME": str(config)}
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, start_new_session=True)
        try:
            assert proc.stdout is not None
            lines = [(time.monotonic(), line.rstrip("\n")) for line in proc.stdout]
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        built = buildkit_step_times(lines, started)
        if proc.returncode != 0:
            raise StorprofError(f"docker build exited {proc.returncode}: {_first(lines[-1][1] if lines else '')}")
        try:        # the image by its tag: a containerd store's BuildKit names no image id in its progress
            image = session.daemon.client.images.get(tag).id
        except docker.errors.DockerException as e:
            raise StorprofError(f"docker build left no image {tag}: {first_line(e)}") from None
        return Built(built.steps, built.total, image)

    def _host_steps(self, app: Path) -> dict[str, float]:
        """The Dockerfile's steps as commands on the host, in a fresh directory each time."""
        assert self._work is not None
        shutil.rmtree(app, ignore_errors=True)
        app.mkdir(parents=True)
        tmp = app / "tmp"
        tmp.mkdir()
        out = {}
        for name, action in (("copy source", lambda: shutil.copytree(self._work / "src", app / "src")),
                             ("copy package", lambda: shutil.copyfile(self._work / "pkg.tar", tmp / "pkg.tar")),
                             ("unpack", lambda: _sh(["tar", "-xf", str(tmp / "pkg.tar"), "-C", str(app)],
                                                    ["rm", str(tmp / "pkg.tar")])),
                             ("chown -R", lambda: _sh(["chown", "-R", OWNER, str(app)])),
                             ("delete half", lambda: _sh(["find", str(app / "pkg"), "-type", "f", "-name", HALF,
                                                          "-delete"]))):
            t0 = time.monotonic()
            action()
            out[name] = time.monotonic() - t0
        shutil.rmtree(app, ignore_errors=True)
        return out

    def cleanup(self, session: Session) -> None:
        if self._image is not None:
            self._image.remove()
            self._image = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None
        if session.host_dir is not None:
            shutil.rmtree(session.host_dir / SUBDIR, ignore_errors=True)


def _sh(*commands: list[str]) -> None:
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env={"PATH": os.defpath})
        if done.returncode != 0:
            raise StorprofError(f"{argv[0]} failed on the host: {_first(done.stderr) or done.returncode}")


def _first(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
