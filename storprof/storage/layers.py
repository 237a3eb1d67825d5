"""Layer timing: what each storage driver pays to make and drop layers, and how that grows.

Container create/start/remove on a small and a large image, commit of an S MiB layer and removal
of the image, images K layers deep, bulk create/remove, and the bytes each step leaves in the data
root, against a host baseline (the same bytes written, and copied, in a plain directory on the same
backing filesystem). Every call is timed with a monotonic clock around the SDK call, after one
untimed warm-up of the same operation.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors
import requests.exceptions

from storprof.engine import containers
from storprof.engine.image import one_file_tar
from storprof.engine.versions import short as short_version
from storprof.errors import UserError
from storprof.harness.workload import Done, Sink, Unit
from storprof.host.usage import allocated_bytes
from storprof.results.records import LayerRecord
from storprof.stats.growth import fit_line, percentile
from storprof.storage.probes.lowerlayer import commit_layer

if TYPE_CHECKING:
    from storprof.harness.session import Session
    from storprof.results import ResultSet

WORKLOAD = "layers"

MIB = 2**20
# overlay2 stacks at most 128 lower directories; the image's own layers count too.
MAX_DEPTH = {"overlay2": 120, "fuse-overlayfs": 120, "aufs": 120, "c8d-overlayfs": 120}


@dataclass(frozen=True)
class LayerPlan:
    samples: int = 20
    layer_sizes_mib: tuple[int, ...] = (0, 16, 256)
    depths: tuple[int, ...] = (1, 8, 32)
    bulk: int = 50
    large_images_mib: tuple[int, ...] = (128, 256)

    def validate(self, driver: str) -> None:
        if self.samples < 1 or self.bulk < 1:
            raise UserError("--samples and --bulk must be positive whole numbers")
        if any(s < 0 for s in self.layer_sizes_mib):
            raise UserError("--layer-sizes must be sizes in MiB, 0 or more")
        if not self.large_images_mib or any(s <= 0 for s in self.large_images_mib):
            raise UserError("--large-images must be sizes in MiB, 1 or more")
        if any(d < 1 for d in self.depths):
            raise UserError("--depths must be positive whole numbers")
        limit = MAX_DEPTH.get(driver)
        if limit and max(self.depths, default=0) > limit:
            raise UserError(f"{driver} allows at most {limit} layers on top of the bench image "
                            f"(its lower-directory limit is 128); asked for {max(self.depths)}")

    def bytes_needed(self) -> int:
        """Room for the largest commit, the largest image, and a host copy of each."""
        return (2 * max(self.layer_sizes_mib, default=0) + 3 * max(self.large_images_mib)) * MIB + (1 << 30)


# Every growth is fitted on at least three sizes (MIN_SIZES): the bench image and two large ones,
# three layer sizes, three depths; with two, any two points make a perfect line.
MIN_SIZES = 3
QUICK_PLAN = LayerPlan(samples=5, layer_sizes_mib=(0, 16, 64), depths=(1, 4, 8), bulk=10, large_images_mib=(64, 192))
# What `sweep --quick` adds per driver: what container create costs by image size, and the space a
# container takes (commit and depth timing are for `storprof layers` and the thorough sweep).
SWEEP_QUICK_PLAN = LayerPlan(samples=2, layer_sizes_mib=(), depths=(), bulk=3, large_images_mib=(32, 96))


def _unpacked_bytes(client, image_id: str) -> int | None:
    """Sum of ImageData.Size.Unpacked over an image's manifests (containerd image store), or None."""
    api = client.api
    try:
        listed = api._result(api._get(api._url("/images/json"), params={"manifests": "1"}), True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, ValueError):
        return None
    for image in listed or []:
        if image.get("Id") == image_id and image.get("Manifests"):
            sizes = [((m.get("ImageData") or {}).get("Size") or {}).get("Unpacked") for m in image["Manifests"]]
            known = [s for s in sizes if isinstance(s, int) and s > 0]
            return sum(known) if known else None
    return None


def write_files(directory: Path, mib: int, file_mib: int = 4) -> None:
    """`mib` MiB as files of `file_mib` MiB, written through the page cache (a build, an install)."""
    block = b"\xa5" * MIB
    for index in range(max(1, mib // file_mib)):
        with open(directory / f"f{index}", "wb") as f:
            for _ in range(min(file_mib, mib)):
                f.write(block)


def fill_argv(directory: str, mib: int) -> list[str]:
    """fio writing `mib` MiB as 4 MiB files (buffered, like a build or package install)."""
    return ["fio", "--name=fill", f"--directory={directory}", "--rw=write", "--bs=1m", "--ioengine=psync",
            f"--size={mib}m", f"--nrfiles={max(1, mib // 4)}", "--create_only=1", "--output-format=json"]


class LayerTiming:
    """The layer-timing workload: one unit per session, every operation of the plan."""

    name = WORKLOAD

    def __init__(self, plan: LayerPlan):
        self.plan = plan
        self._timer: LayerTimer | None = None

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {(WORKLOAD, r.context.driver_spec) for r in results.layers}

    def units(self, spec: str, done: Done) -> list[Unit]:
        key = (WORKLOAD, spec)
        return [] if key in done else [Unit(WORKLOAD, "layer timing", "-", 0, key, "layer timing")]

    def prepare(self, session: Session, sink: Sink) -> None:
        self.plan.validate(session.spec.driver)

    def run(self, unit: Unit, session: Session, sink: Sink) -> str:
        self._timer = LayerTimer(session, sink)
        self._timer.run(self.plan)
        return "done"

    def cleanup(self, session: Session) -> None:
        if self._timer is not None:
            self._timer.cleanup()
            self._timer = None


class LayerTimer:
    """Runs the layer operations of one daemon, emitting one record per timed sample."""

    def __init__(self, session: Session, sink: Sink):
        self.session = session
        self.spec = session.label
        self.client = session.daemon.client
        self.image = session.context.image or ""
        self.labels = session.labels
        self.sink = sink
        self.host_dir = session.host_dir
        self.data_root = session.data_root
        self.progress = sink.message
        self._made_images: list[str] = []
        self._made_containers: list = []

    # ------------------------------------------------------------------ helpers
    def _emit(self, op: str, seconds: float, **extra) -> None:
        self.sink.emit(LayerRecord(context=self.session.context, op=op, seconds=seconds, **extra))

    def _timed(self, fn, *args, **kw):
        """fn(*args, **kw) and the seconds it took."""
        t0 = time.monotonic()
        out = fn(*args, **kw)
        return out, time.monotonic() - t0

    def _create(self, image: str, **kw):
        c = containers.create(self.client, image, labels=self.labels, **kw)
        self._made_containers.append(c)
        return c

    def _remove(self, c) -> None:
        c.remove(force=True)
        if c in self._made_containers:
            self._made_containers.remove(c)

    def _remove_all(self, made: list) -> None:
        for c in made:
            self._remove(c)

    def _commit(self, c) -> str:
        changes = [f"LABEL {k}={v}" for k, v in self.labels.items()]
        img = c.commit(changes=changes)
        self._made_images.append(img.id)
        return img.id

    def _remove_image(self, image_id: str) -> None:
        """Remove an image; its untagged parents made here go with it (docker prunes them)."""
        try:
            self.client.images.remove(image_id, force=True)
        except docker.errors.NotFound:
            pass
        if image_id in self._made_images:
            self._made_images.remove(image_id)

    def _space(self) -> int | None:
        if self.data_root and self.data_root.is_dir():
            return allocated_bytes(self.data_root)
        try:
            return int(self.client.df().get("LayersSize") or 0)
        except docker.errors.DockerException:
            return None

    def _image_with_files(self, mib: int) -> str:
        """The bench image plus one committed layer of `mib` MiB of files."""
        image = commit_layer(self.client, self.image, self.labels, f"{self.session.name_prefix}-layers-{mib}m",
                             lambda builder: builder.exec(fill_argv("/bench/union", mib)))
        self._made_images.append(image)
        return image

    # ------------------------------------------------------------------ operations
    def container_lifecycle(self, image: str, image_label: str, image_mib: float, samples: int) -> None:
        """create, start, rm of a container, each timed; one untimed warm-up first."""
        warm = self._create(image)
        warm.start()
        self._remove(warm)
        for i in range(samples):
            c, t_create = self._timed(self._create, image)
            _, t_start = self._timed(c.start)
            _, t_rm = self._timed(self._remove, c)
            for op, t in (("container create", t_create), ("container start", t_start), ("container rm", t_rm)):
                self._emit(op, t, image=image_label, image_mib=image_mib, sample=i)

    def _commit_once(self, s_mib: int) -> tuple[float, float, int | None]:
        """A container writes s_mib MiB; returns (commit seconds, image rm seconds, bytes added)."""
        c = self._create(self.image)
        c.start()
        if s_mib:
            code, out = c.exec_run(fill_argv("/bench/union", s_mib))
            if code != 0:
                raise UserError(f"[{self.spec}] writing {s_mib} MiB failed: {out.decode()[-200:]}")
        before = self._space()
        image, t_commit = self._timed(self._commit, c)
        after = self._space()
        self._remove(c)
        _, t_rmi = self._timed(self._remove_image, image)
        added = after - before if before is not None and after is not None else None
        return t_commit, t_rmi, added

    def commit_sizes(self, sizes_mib: tuple[int, ...], samples: int) -> None:
        """A container writes S MiB, then commit is timed, then removal of the new image."""
        self._commit_once(min(sizes_mib))                      # untimed warm-up
        for s_mib in sizes_mib:
            for i in range(samples):
                t_commit, t_rmi, added = self._commit_once(s_mib)
                self._emit("commit", t_commit, layer_mib=s_mib, sample=i, bytes_added=added)
                self._emit("image rm", t_rmi, layer_mib=s_mib, sample=i)

    def depth(self, depths: tuple[int, ...], samples: int) -> None:
        """Images K layers deep (one small file per layer, by commit): build, create on top, remove."""
        for k in depths:
            parent, t_build = self.image, 0.0
            for layer in range(k):
                c = self._create(parent)
                archive = one_file_tar(f"layer-{layer}", f"layer {layer}\n".encode())
                t0 = time.monotonic()
                c.put_archive("/", archive)
                parent = self._commit(c)
                t_build += time.monotonic() - t0
                self._remove(c)
            self._emit("image build (per layer)", t_build / k, depth=k)
            layers = len(self.client.images.get(parent).attrs["RootFS"]["Layers"])
            warm = self._create(parent)
            self._remove(warm)
            for i in range(samples):
                c, t_create = self._timed(self._create, parent)
                self._remove(c)
                self._emit("container create", t_create, image=f"depth {k}", depth=k, layers=layers, sample=i)
            chain = list(self._made_images)
            _, t_rm = self._timed(self._remove_image, parent)   # prunes the untagged stack below
            self._emit("image rm (whole stack)", t_rm, depth=k, layers=layers)
            for image_id in chain:                                    # already gone: forget them
                if image_id in self._made_images and not self._image_exists(image_id):
                    self._made_images.remove(image_id)

    def bulk(self, count: int) -> None:
        before = self._space()
        made, t_create = self._timed(lambda: [self._create(self.image) for _ in range(count)])
        during = self._space()
        _, t_rm = self._timed(self._remove_all, made)
        per = ((during - before) / count) if before is not None and during is not None else None
        self._emit("bulk create", t_create, count=count, per_container=t_create / count, bytes_per_container=per)
        self._emit("bulk rm", t_rm, count=count, per_container=t_rm / count)

    def host_baseline(self, sizes_mib: tuple[int, ...], samples: int) -> None:
        """The same bytes written (4 MiB files, buffered, as the containers write them), then copied,
        in a plain directory on the same filesystem; both in this process, so no program's start-up
        is timed (a fio start once made 16 and 64 MiB take the same 285 ms)."""
        if self.host_dir is None:
            return
        for s_mib in sizes_mib:
            if not s_mib:
                continue
            for i in range(samples):
                src, dst = self.host_dir / f"w-{s_mib}", self.host_dir / f"c-{s_mib}"
                src.mkdir(parents=True, exist_ok=True)
                _, t_write = self._timed(write_files, src, s_mib)
                _, t_copy = self._timed(shutil.copytree, src, dst)
                self._emit("host write", t_write, layer_mib=s_mib, sample=i)
                self._emit("host copy", t_copy, layer_mib=s_mib, sample=i)
                shutil.rmtree(src)
                shutil.rmtree(dst)

    def run(self, plan: LayerPlan) -> None:
        base_mib = self._image_mib(self.image)
        self.progress(f"[{self.spec}] layers: container lifecycle on the bench image ({base_mib:.0f} MiB)")
        self.container_lifecycle(self.image, "bench", base_mib, plan.samples)
        for added in plan.large_images_mib:
            large = self._image_with_files(added)
            large_mib = self._image_mib(large)
            self.progress(f"[{self.spec}] layers: container lifecycle on a {large_mib:.0f} MiB image")
            self.container_lifecycle(large, f"large {added} MiB", large_mib, plan.samples)
            self._remove_image(large)
        if plan.layer_sizes_mib:
            self.progress(f"[{self.spec}] layers: commit of {', '.join(map(str, plan.layer_sizes_mib))} MiB")
            self.commit_sizes(plan.layer_sizes_mib, plan.samples)
        if plan.depths:
            self.progress(f"[{self.spec}] layers: image depths {', '.join(map(str, plan.depths))}")
            self.depth(plan.depths, max(1, plan.samples // 2))
        self.progress(f"[{self.spec}] layers: {plan.bulk} containers in a row")
        self.bulk(plan.bulk)
        self.host_baseline(plan.layer_sizes_mib, max(1, plan.samples // 2))     # what commits are held against

    def _image_exists(self, image_id: str) -> bool:
        try:
            self.client.images.get(image_id)
            return True
        except docker.errors.NotFound:
            return False

    def _image_mib(self, image: str) -> float:
        """The image's unpacked size. With the containerd image store `Size` is the compressed
        content (the bench image: 34 MiB against 82 unpacked; 32 MiB of added files hardly
        changed it), so the unpacked size comes from the image list's per-manifest data (API 1.47)."""
        attrs = self.client.images.get(image).attrs
        unpacked = _unpacked_bytes(self.client, attrs.get("Id", ""))
        return (unpacked if unpacked is not None else attrs.get("Size", 0)) / MIB

    def cleanup(self) -> None:
        """Remove whatever an error left: this timer's containers, then its images, newest first."""
        for c in list(self._made_containers):
            try:
                self._remove(c)
            except docker.errors.DockerException:
                pass
        for image_id in reversed(list(self._made_images)):
            try:
                self._remove_image(image_id)
            except docker.errors.DockerException:
                pass


# ------------------------------------------------------------------ aggregation (pure)

def summarize_layers(records: list[LayerRecord]) -> list[dict]:
    """Per (driver spec, operation, variant): p50 and p95 in ms, host ratio, space used."""
    groups: dict[tuple, list[LayerRecord]] = {}
    for r in records:
        groups.setdefault((r.context.driver_spec, r.op, r.variant), []).append(r)
    host_copy = {(spec, recs[0].layer_mib): percentile([r.seconds for r in recs], 50)
                 for (spec, op, _), recs in groups.items() if op == "host copy"}
    rows = []
    for (spec, op, variant), recs in groups.items():
        secs = [r.seconds for r in recs]
        docker = short_version(recs[0].context.docker_version)
        row = {"driver_spec": spec, "docker": docker, "op": op, "variant": variant, "n": len(secs),
               "p50_ms": percentile(secs, 50) * 1000, "p95_ms": percentile(secs, 95) * 1000}
        if op == "commit" and recs[0].layer_mib:
            base = host_copy.get((spec, recs[0].layer_mib))
            row["host_ratio"] = percentile(secs, 50) / base if base else None
        used = [r.bytes_added if r.bytes_added is not None else r.bytes_per_container for r in recs]
        kept = [b for b in used if b is not None]          # a measured 0 bytes is kept
        if kept:
            row["bytes"] = percentile(kept, 50)
        rows.append(row)
    return rows


def growth(records: list[LayerRecord]) -> list[dict]:
    """Slopes: container create ms per 100 MiB of image, commit ms per 100 MiB of layer,
    container create ms per layer of depth; each with R²."""
    out = []
    for spec in sorted({r.context.driver_spec for r in records}):
        rs = [r for r in records if r.context.driver_spec == spec]
        series: dict[tuple[str, str], list[tuple[float, float]]] = {
            ("container create", "ms per 100 MiB of image"):
                [(r.image_mib / 100, r.seconds * 1000) for r in rs
                 if r.op == "container create" and r.image_mib is not None],
            ("commit", "ms per 100 MiB of layer"):
                [(r.layer_mib / 100, r.seconds * 1000) for r in rs if r.op == "commit" and r.layer_mib is not None],
            ("container create", "ms per layer of depth"):
                [(r.layers, r.seconds * 1000) for r in rs if r.op == "container create" and r.layers is not None],
        }
        for (op, unit), pts in series.items():
            if len({p[0] for p in pts}) < MIN_SIZES:
                continue                 # two sizes would always make a perfect line
            fit = fit_line([p[0] for p in pts], [p[1] for p in pts])
            if fit:
                out.append({"driver_spec": spec, "op": op, "unit": unit, "slope": fit.slope,
                            "r2": fit.r2, "n": fit.n})
    return out
