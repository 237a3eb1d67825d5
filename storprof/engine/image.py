"""The bench image fio runs in, built offline in each daemon.

No registry is reachable, so the image is a root filesystem made from the host's own `fio` and
the shared libraries it links (plus `sleep`, `mkdir` and `rm` so a container can idle and tidy
up), `docker import`ed. Because it is the host's very binary, the host baseline and the container
run the same fio. The tag is a hash of the content, so a daemon imports it once.
Users with a registry can build `Dockerfile.bench` instead and pass it with `--image`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import docker.errors

from storprof.errors import EnvironmentProblem
from storprof.host.proc import require, run

REPOSITORY = "storprof-bench"
# Directories fio targets inside a container: the union top layer and the mount points.
BENCH_DIRS = ("bench/union", "bench/volume", "bench/bind", "bench/host", "bench/lower", "storprof/jobs", "tmp")
# fio and what a container needs to idle, tidy up and bound fio's time (timeout kills a fio run that overstays).
TOOLS = ("fio", "sleep", "mkdir", "rm", "timeout")


def linked_libraries(binary: str) -> list[str]:
    """Absolute paths of the shared libraries `binary` loads, from ldd."""
    out = run(["ldd", binary], timeout=60).stdout
    return parse_ldd(out)


def parse_ldd(text: str) -> list[str]:
    """Pure: the absolute library paths in ldd output (both 'x => /p (..)' and '/p (..)' forms)."""
    paths = []
    for line in text.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            paths.append(m.group(1))
    return sorted(set(paths))


@dataclass(frozen=True)
class RootfsPlan:
    """Which host files go where in the image; hashing it names the image."""

    files: tuple[tuple[str, str], ...]   # (host path, path inside the image)
    dirs: tuple[str, ...] = BENCH_DIRS
    made: tuple[tuple[str, bytes], ...] = ()   # (path inside the image, content): files made, not copied
    open_dirs: tuple[str, ...] = ()    # directories any user of the image may make entries in (sticky, 1777)

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for host, inside in self.files:
            h.update(inside.encode() + b"\0")
            with open(host, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        for d in self.dirs:
            h.update(d.encode() + b"\0")
        for inside, data in self.made:
            h.update(inside.encode() + b"\0" + data)
        for d in self.open_dirs:
            h.update(b"open\0" + d.encode())
        return h.hexdigest()[:16]


def plan_rootfs(tools: tuple[str, ...] = TOOLS, dirs: tuple[str, ...] = BENCH_DIRS,
                made: tuple[tuple[str, bytes], ...] = ()) -> RootfsPlan:
    """The host's fio and helpers (or other tools), with every library they link, at the same paths."""
    files: dict[str, str] = {}   # path inside the image -> host file
    for tool in tools:
        real = str(Path(require(tool)).resolve())
        files["/usr/bin/fio" if tool == "fio" else f"/bin/{tool}"] = real
        for lib in linked_libraries(real):
            files[lib] = str(Path(lib).resolve())
    return RootfsPlan(tuple(sorted((host, inside) for inside, host in files.items())), dirs, made)


def write_rootfs_tar(plan: RootfsPlan, path: Path, file: BinaryIO | None = None) -> Path:
    """An uncompressed tar of the root filesystem, written to disk and streamed to the daemon from
    there: built in memory it doubled the sweep's peak memory (docs/findings.md). `file`, when
    given, is the descriptor `path` was made with (mkstemp), written without opening the name again."""
    with tarfile.open(path if file is None else None, mode="w", fileobj=file) as tar:
        made_dirs: set[str] = set()

        def add_dir(d: str) -> None:
            parts = Path(d.strip("/")).parts
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub and sub not in made_dirs:
                    info = tarfile.TarInfo(sub)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o1777 if sub == "tmp" or sub in plan.open_dirs else 0o755
                    tar.addfile(info)
                    made_dirs.add(sub)

        for d in plan.dirs:
            add_dir(d)
        for inside, data in plan.made:
            add_dir(str(Path(inside).parent))
            made = tarfile.TarInfo(inside.lstrip("/"))
            made.size, made.mode = len(data), 0o644
            tar.addfile(made, io.BytesIO(data))
        for host, inside in plan.files:
            add_dir(str(Path(inside).parent))
            info = tar.gettarinfo(host, arcname=inside.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(host, "rb") as f:
                tar.addfile(info, f)
    return path


def one_file_tar(name: str, data: bytes, mode: int = 0o644) -> bytes:
    """A tar holding one file: what put_archive and docker import take."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class BenchImage:
    """The image in one daemon: found by its content tag, or imported; removed only if made here."""

    def __init__(self, client, run_label: dict[str, str], user_image: str | None = None,
                 repository: str = REPOSITORY):
        self.repository = repository
        self.client = client
        self.run_label = run_label
        self.user_image = user_image
        self.ref: str | None = None
        self.made_here = False

    def ensure(self, plan: RootfsPlan | None = None, scratch: Path | None = None) -> str:
        """The image's reference; imports it (tar written in `scratch`, then removed) if missing."""
        if self.user_image:
            try:
                self.client.images.get(self.user_image)
            except docker.errors.ImageNotFound:
                raise EnvironmentProblem(f"image {self.user_image} is not in the daemon; build it with "
                                         f"'docker build -f Dockerfile.bench -t {self.user_image} .'") from None
            self.ref = self.user_image
            return self.ref
        plan = plan or plan_rootfs()
        ref = f"{self.repository}:{plan.content_hash()}"
        try:
            self.client.images.get(ref)
            self.ref = ref
            return ref
        except docker.errors.ImageNotFound:
            pass
        changes = [f"LABEL {k}={v}" for k, v in self.run_label.items()]
        changes += ['CMD ["/bin/sleep", "infinity"]', "WORKDIR /"]
        repo, tag = ref.split(":")
        fd, name = tempfile.mkstemp(prefix="storprof-rootfs-", suffix=".tar", dir=scratch)
        try:
            with os.fdopen(fd, "wb") as file:
                write_rootfs_tar(plan, Path(name), file)
            self.client.api.import_image_from_file(name, repository=repo, tag=tag, changes=changes)
        finally:
            os.unlink(name)
        self.ref = ref
        self.made_here = True
        return ref

    def remove(self) -> None:
        if self.made_here and self.ref:
            try:
                self.client.images.remove(self.ref, force=True)
            except docker.errors.NotFound:
                pass
            self.made_here = False
