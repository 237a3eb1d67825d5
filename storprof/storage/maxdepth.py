"""The deepest image each driver really creates and runs, found by search, with the error at the
first failure.

moby documents 125 layers; overlay's mount options must fit in one page, so a driver that names
each lower directory by a long path can fail earlier (reports: 122, about 70), and the kernel
stacks at most 500 lower directories. Each probe loads an image of K layers (deepstack's
archives: byte-identical layers across depths, so a deeper probe extracts only the layers it adds;
`load_seconds` shows it), then creates and starts a container of it and reads the file in its
bottom layer through the container's root. The search tries the documented limit first and the
depth above it, so a driver that meets it costs two probes; above that it doubles up to the
ceiling, and below a failure it bisects between the deepest success and the shallowest failure.

Every probe is a record, a failed one too: the failure is the finding, so its status is "ok" and
`params.ok` says how the probe went; the rows have a view of their own (views/own_views.py) and
stay out of the generic time tables (summary.OWN_VIEWS).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker.errors

from storprof.engine import containers
from storprof.engine.image import plan_rootfs
from storprof.errors import DaemonError, UserError, first_line
from storprof.harness.workload import Done, Sink, Unit
from storprof.results.records import ProbeRecord
from storprof.storage.probes.copyup import PROBE
from storprof.storage.probes.deepstack import TARGET, build_stack_image, target_bytes
from storprof.storage.probes.filetiming import container_root
from storprof.storage.probes.lowerlayer import remove_image

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "max-depth"
OPERATION = "probe"       # each record is one probe of one depth
GROUP = "max depth"
DOCUMENTED = 125          # moby's layer store refuses longer chains ("max depth exceeded")
MAX_CEILING = 500         # overlayfs stacks at most 500 lower directories (OVL_MAX_STACK)
TARGET_MIB = 1


@dataclass(frozen=True)
class MaxDepthPlan:
    ceiling: int = 130          # the search tries no deeper than this
    first: int = DOCUMENTED     # the first depth tried (then the one above it)

    def validate(self) -> None:
        if not 2 <= self.ceiling <= MAX_CEILING:
            raise UserError(f"--max-depth-ceiling takes a depth from 2 to {MAX_CEILING}")
        if self.first < 1:
            raise UserError("the max-depth search starts at a depth of 1 or more")

    def bytes_needed(self) -> int:
        """vfs keeps a full copy of the image per layer: the worst case."""
        return self.ceiling * (TARGET_MIB + 8) * 2**20


def next_depth(ok: int | None, failed: int | None, ceiling: int, first: int = DOCUMENTED) -> int | None:
    """The next depth to try, given the deepest that ran and the shallowest that failed so far
    (None: none yet); None when the search is over."""
    if ok is None and failed is None:
        return min(first, ceiling)
    if failed is None:
        assert ok is not None
        return None if ok >= ceiling else min(ceiling, ok + 1 if ok == first else 2 * ok)
    if ok is None:
        return 1 if failed > 1 else None
    return (ok + failed) // 2 if failed - ok > 1 else None


@dataclass(frozen=True)
class Probe:
    depth: int
    ok: bool
    stage: str              # load, create, start, read; or 'ran'
    error: str
    seconds: float          # the whole probe: load, create, start and the read, or until the failure
    load_seconds: float
    image_layers: int | None = None     # as the daemon reports the loaded image
    mount: dict = field(default_factory=dict)

    def params(self, ceiling: int, last: bool) -> dict:
        return {"depth": self.depth, "ok": self.ok, "stage": self.stage, "error": self.error, "ceiling": ceiling,
                "load_seconds": round(self.load_seconds, 4), "image_layers": self.image_layers, "last": last,
                **self.mount}


class MaxDepth:
    """One search per spec, a single unit (each probe depends on the last); its probes are the records."""

    name = WORKLOAD

    def __init__(self, plan: MaxDepthPlan):
        self.plan = plan
        self._images: list[str] = []

    @staticmethod
    def key(spec: str) -> tuple:
        return (PROBE, spec, GROUP, "union", 0)

    def done_keys(self, results: ResultSet) -> set[tuple]:
        """A search is done when its last probe is recorded; an interrupted one runs again. Probes
        recorded before `last` existed count as done when they leave nothing to try."""
        by_spec: dict[str, list[ProbeRecord]] = {}
        for r in results.of(ProbeRecord):
            if r.workload == WORKLOAD:
                by_spec.setdefault(r.context.driver_spec, []).append(r)
        return {self.key(spec) for spec, probes in by_spec.items()
                if any(p.params.get("last") is True for p in probes)
                or (all("last" not in p.params for p in probes) and self._concluded(probes))}

    def _concluded(self, probes: list[ProbeRecord]) -> bool:
        ok = [p.params["depth"] for p in probes if p.params.get("ok") is True]
        failed = [p.params["depth"] for p in probes if p.params.get("ok") is False]
        return next_depth(max(ok, default=None), min(failed, default=None), self.plan.ceiling, self.plan.first) is None

    def units(self, spec: str, done: Done) -> list[Unit]:
        unit = Unit(WORKLOAD, GROUP, "union", 0, self.key(spec), label="max depth search")
        return [] if unit.key in done else [unit]

    def prepare(self, session: Session, sink: Sink) -> None:
        sink.message(f"[{session.label}] max depth: images of up to {self.plan.ceiling} layers, "
                     f"{min(self.plan.first, self.plan.ceiling)} first")

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        base, target = plan_rootfs(("sleep",)), target_bytes(TARGET_MIB)
        ok: int | None = None
        failed: int | None = None
        first_error = ""
        tried = 0
        started = time.perf_counter()
        k = next_depth(ok, failed, self.plan.ceiling, self.plan.first)
        while k is not None:
            probe = self._probe(session, k, base, target)
            if probe.ok:
                ok = k
            else:
                failed, first_error = k, f"{probe.stage}: {probe.error}"
            following = next_depth(ok, failed, self.plan.ceiling, self.plan.first)
            sink.emit(ProbeRecord(context=session.context, workload=WORKLOAD, operation=OPERATION, placement="union",
                                  repeat=tried, seconds=probe.seconds,
                                  params=probe.params(self.plan.ceiling, last=following is None)))
            tried += 1
            k = following
        took = f"{tried} probes, {time.perf_counter() - started:.0f} s"
        if failed is None:
            return f"ran {ok} layers, the ceiling ({took})"
        return f"deepest that ran: {ok or 0} layers; {failed} failed at {shorten(first_error, 80)} ({took})"

    def _probe(self, session: Session, depth: int, base, target: bytes) -> Probe:
        client = session.daemon.client
        tag = f"storprof-depth:{session.run_id}-k{depth}"
        self._images.append(tag)            # before the load: a half-loaded image is removed too
        start = time.perf_counter()
        try:
            build_stack_image(client, depth, base, target, session.labels, tag, session.scratch)
        except (DaemonError, docker.errors.DockerException) as e:
            took = time.perf_counter() - start
            return Probe(depth, False, "load", _what_failed(e), took, took, mount=mount_facts(_full_text(e)))
        load_seconds = time.perf_counter() - start
        stage, container, layers = "create", None, None
        try:
            layers = len(client.images.get(tag).attrs["RootFS"]["Layers"])
            container = containers.create(client, tag, labels=session.labels,
                                          name=f"{session.name_prefix}-depth-k{depth}")
            stage = "start"
            container.start()
            stage = "read"
            with open(container_root(container) / TARGET, "rb") as f:
                if f.read() != target:
                    raise OSError("the bottom layer's file read back different")
            return Probe(depth, True, "ran", "", time.perf_counter() - start, load_seconds, layers)
        except (docker.errors.DockerException, OSError) as e:
            return Probe(depth, False, stage, _what_failed(e), time.perf_counter() - start, load_seconds, layers,
                         mount_facts(_full_text(e)))
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except docker.errors.DockerException:
                    pass

    def cleanup(self, session: Session) -> None:
        for tag in reversed(self._images):        # deepest first: each shares the layers below it
            remove_image(session.daemon.client, tag)
        self._images.clear()


def _full_text(e: BaseException) -> str:
    """The daemon's own explanation, without docker-py's request URL: an API error's explanation,
    or, for a load storprof wrapped (deepstack), the error it wrapped ("max depth exceeded")."""
    if isinstance(e, DaemonError) and isinstance(e.__context__, docker.errors.DockerException):
        e = e.__context__
    text = str(getattr(e, "explanation", "") or "") or first_line(e)
    return " ".join(text.split())


def _what_failed(e: BaseException, keep: int = 400) -> str:
    """A long error (a failed mount names every layer) keeps its start and its end, where the errno is."""
    return shorten(_full_text(e), keep)


_MOUNT_DATA = re.compile(r'data: "([^"]*)"')


def mount_facts(text: str) -> dict:
    """What a failed overlay mount asked the kernel for, from the error that quotes its options:
    how many lower directories and how long the option string was (the limits are 500 and a page)."""
    data = _MOUNT_DATA.search(text)
    lower = re.search(r"(?:^|,)lowerdir=([^,]*)", data.group(1)) if data else None
    if not data or not lower:
        return {}
    return {"lowerdirs": len(lower.group(1).split(":")), "mount_data_bytes": len(data.group(1).encode())}


def shorten(error: str, width: int = 100) -> str:
    """The start of an error and its end (the errno of a failed mount is last)."""
    return error if len(error) <= width else f"{error[:width // 2 - 2]} … {error[-(width // 2 - 2):]}"
