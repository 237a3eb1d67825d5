"""Where fio runs: on the host, or in a container on its union top layer, a volume or a bind mount.

Every placement of one driver spec sits on the same backing filesystem, so the host placement is
the baseline the others are divided by. One container serves all the jobs of its placement:
starting a container per run would measure container start-up, not I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from storprof.engine import containers
from storprof.engine.image import one_file_tar
from storprof.errors import DaemonError, StorprofError, first_line
from storprof.host.limits import CEILING, Limits
from storprof.host.proc import CommandTimeout
from storprof.host.sandbox import INPUT_DIR, run_sandboxed

# The A/A control: the host baseline run again in the same repeat, on the host's own files. Its
# ratio to host is 1.00 by construction, so its intervals say how often the sweep's intervals
# cover the truth here, and its spread is the machine's noise with nothing else in it. (On files
# of its own it read 0.94x on xfs and 1.08x on btrfs: where a file lies is not noise.)
AA = "host-aa"
PLACEMENTS = ("host", "union", "volume", "bind", AA)
DEFAULT_PLACEMENTS = ("host", "union", "volume", "bind")

# Where each placement's fio files live inside a container (see image.BENCH_DIRS).
CONTAINER_DIRS = {"union": "/bench/union", "volume": "/bench/volume",
                  "bind": "/bench/bind", "host": "/bench/host"}
CONTAINER_JOBS_DIR = "/storprof/jobs"
# Where an image made by lowerlayer.image_with_files keeps its data files (see image.BENCH_DIRS).
LOWER_DIR = "/bench/lower"


def fio_argv(job_path: str) -> list[str]:
    """The fio command for one rendered job file; JSON so results are parsed, not scraped.
    clock_gettime (the vDSO clock) spares fio calibrating the CPU clock at every start: 0.257 s
    against 0.322 s a run for a 10 ms job here (n=10 each, interleaved), and the 0.5 s quick runs
    are run hundreds of times a sweep (docs/findings.md, 'fio start-up'). Given on the command
    line: in a job file fio calibrates before it reads the option (measured, no difference)."""
    return ["fio", "--clocksource=clock_gettime", "--output-format=json", str(job_path)]


@dataclass(frozen=True)
class FioRun:
    """What one fio invocation printed; parsing happens elsewhere (fioresult)."""

    stdout: str
    stderr: str
    returncode: int
    wall_seconds: float


class Target:
    """One placement of one driver spec, ready to run fio jobs in `fio_dir`."""

    placement: str
    fio_dir: str
    description: str
    # Where lower-layer jobs find their data file: a lower image layer on union, else fio_dir.
    lower_dir: str

    def run_fio(self, job_text: str, job_key: str, timeout: float, limits: Limits = CEILING) -> FioRun:
        """Run the job text; `limits` (FioJob.limits()) bound what fio may take where storprof
        applies them per run (the host; a container has its own, containers.POLICY)."""
        raise NotImplementedError

    def fresh_dir(self, name: str) -> str:
        """A new, empty directory `name` in fio_dir: metadata jobs run in one each, since a
        directory that held thousands of files stays slower."""
        raise NotImplementedError

    def modified_paths(self) -> set[str] | None:
        """Paths the container changed against its image (docker diff); None where there is no image."""
        return None

    def close(self) -> None:
        pass


class HostTarget(Target):
    """fio on the host itself, in a directory of the spec's backing filesystem."""

    def __init__(self, directory: Path, jobs_dir: Path, placement: str = "host"):
        self.placement = placement
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.fio_dir = str(self.directory)
        self.lower_dir = self.fio_dir
        self.description = f"host directory {self.directory}"

    def fresh_dir(self, name: str) -> str:
        path = self.directory / (name if self.placement == "host" else f"{name}-{self.placement}")
        path.mkdir()      # the placement is new for this run, so the name is too
        return str(path)

    def run_fio(self, job_text: str, job_key: str, timeout: float, limits: Limits = CEILING) -> FioRun:
        """fio in the sandbox (sandbox.py), under `limits`: it sees this placement's directory and
        the job file."""
        path = self.jobs_dir / f"{self.placement}-{job_key}.fio"
        path.write_text(job_text)
        start = time.monotonic()
        try:
            done = run_sandboxed("fio", fio_argv(f"{INPUT_DIR}/job.fio")[1:], writable=[self.directory],
                                 inputs={"job.fio": path}, timeout=timeout, check=False, limits=limits)
        except CommandTimeout as e:
            return FioRun("", str(e), -1, time.monotonic() - start)
        return FioRun(done.stdout, done.stderr, done.returncode, time.monotonic() - start)


class ContainerTarget(Target):
    """fio through `docker exec` in one long-lived container of the bench image.

    `placement` picks the directory: `union` is a directory of the container's writable top
    layer; `volume` a named local volume made for this run; `bind` (and `host` in attach mode)
    a bind-mounted directory of the daemon's host.
    """

    def __init__(self, client, image_ref: str, placement: str, labels: dict[str, str],
                 name: str, bind_source: str | None = None, lower_files: bool = False,
                 user: str | None = None, environment: dict[str, str] | None = None):
        self.client = client
        self.placement = placement
        self.labels = labels
        self.fio_dir = CONTAINER_DIRS[placement]
        # An image from lowerlayer.image_with_files holds data files in LOWER_DIR of a lower layer.
        self.lower_dir = LOWER_DIR if lower_files and placement == "union" else self.fio_dir
        self.volume: Any = None
        self.container: Any = None      # a docker Container once started; None after close()
        mounts = {}
        try:
            if placement == "volume":
                self.volume = client.volumes.create(name=f"{name}-vol", labels=labels)
                mounts[self.volume.name] = {"bind": self.fio_dir, "mode": "rw"}
                self.description = f"named volume {self.volume.name}"
            elif placement in ("bind", "host"):
                if not bind_source:
                    raise StorprofError(f"placement {placement} needs a host directory to bind")
                mounts[bind_source] = {"bind": self.fio_dir, "mode": "rw"}
                self.description = f"bind mount of {bind_source}"
            else:
                self.description = "container's writable top layer"
            # `user`: a server that refuses root (PostgreSQL) runs as that uid, in its own image
            extra: dict[str, Any] = {"user": user} if user else {}
            self.container = containers.run(client, image_ref, labels=labels, name=name, volumes=mounts,
                                            environment=environment or {}, **extra)
        except docker.errors.DockerException as e:
            self.close()
            raise DaemonError(f"could not start a {placement} container: {first_line(e)}") from None

    def _put_job(self, job_text: str, job_key: str) -> str:
        self.container.put_archive(CONTAINER_JOBS_DIR, one_file_tar(f"{job_key}.fio", job_text.encode()))
        return f"{CONTAINER_JOBS_DIR}/{job_key}.fio"

    def run_fio(self, job_text: str, job_key: str, timeout: float, limits: Limits = CEILING) -> FioRun:
        """fio through docker exec, under coreutils' timeout in the container: a run that
        overstays is killed there (the exec call alone would wait for ever)."""
        path = self._put_job(job_text, job_key)
        argv = ["timeout", "--kill-after=5", f"{timeout:g}", *fio_argv(path)]
        api = self.client.api
        saved, api.timeout = api.timeout, timeout + 60     # the API call outlives the killed fio
        start = time.monotonic()
        try:
            code, (out, err) = self.container.exec_run(argv, demux=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise DaemonError(f"docker exec of fio failed: {first_line(e)}") from None
        finally:
            api.timeout = saved
        wall = time.monotonic() - start
        if code in (124, 137) and wall >= timeout:
            return FioRun("", f"fio did not finish within {timeout:g}s (killed)", -1, wall)
        return FioRun((out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"),
                      code if code is not None else -1, wall)

    def exec(self, argv: list[str]) -> None:
        try:
            code, out = self.container.exec_run(argv)
        except docker.errors.DockerException as e:
            raise DaemonError(f"docker exec of {argv[0]} failed: {first_line(e)}") from None
        if code != 0:
            raise DaemonError(f"{' '.join(argv)} failed in the {self.placement} container: "
                              f"{(out or b'').decode(errors='replace').strip()}")

    def fresh_dir(self, name: str) -> str:
        path = f"{self.fio_dir}/{name}"
        self.exec(["/bin/mkdir", path])   # one exec: the container (or volume) is new for this run
        return path

    def remove_dir(self, path: str) -> None:
        self.exec(["/bin/rm", "-rf", path])

    def modified_paths(self) -> set[str] | None:
        try:
            return {change["Path"] for change in (self.container.diff() or [])}
        except docker.errors.DockerException as e:
            raise DaemonError(f"docker diff of the {self.placement} container failed: {first_line(e)}") from None

    def close(self) -> None:
        """Remove the container (killing fio if it still runs) and this run's volume."""
        if self.container is not None:
            try:
                self.container.remove(force=True, v=False)
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException:
                pass
            self.container = None
        if self.volume is not None:
            try:
                self.volume.remove(force=True)
            except docker.errors.DockerException:
                pass
            self.volume = None
