"""Copy-up: what the first write into a file shipped in an image costs.

overlay2 and fuse-overlayfs copy the whole file to the top layer when it is first opened for
writing; btrfs copies only the extents written (at writeback); vfs copied everything when the
container was made. Each sample is a fresh container of an image whose S MiB file lives in a
lower layer, so every sample really copies up; the host baseline writes into a file of the same
size in a plain directory of the same backing filesystem. Before each sample the file's pages are
dropped from the page cache, as for an image not read recently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .filetiming import WriteTiming, drop_cached_pages, fresh_container_root, time_write
from .fioresult import parse_fio_output
from .fiojob import precondition_job
from .lowerlayer import image_with_files, remove_image
from .placements import LOWER_DIR, HostTarget
from .probe import ProbeHooks

MIB = 2**20
WORKLOAD = "copyup"


@dataclass(frozen=True)
class CopyUpPlan:
    sizes_mib: tuple[int, ...] = (64, 512)

    def validate(self) -> None:
        if not self.sizes_mib or any(s < 1 for s in self.sizes_mib):
            raise UserError("--copyup-sizes takes sizes in MiB, 1 or more")

    def bytes_needed(self) -> int:
        """The host file, the image layer, and one container's copy of each size."""
        return 3 * sum(self.sizes_mib) * MIB


def file_name(size_mib: int) -> str:
    return f"copyup-{size_mib}m.dat"


def job_names(size_mib: int) -> dict[str, str]:
    """The rows one sample gives: the first write (open to pwrite, then to fsync) and the second."""
    base = f"copyup-{size_mib}m"
    return {"first_write": f"{base} first write", "first_done": f"{base} first write+fsync",
            "second_write": f"{base} second write", "second_done": f"{base} second write+fsync"}


def sample_file(path: Path) -> tuple[WriteTiming, WriteTiming]:
    """Drop the file's cached pages, then time the first 4 KiB write and a second one beside it."""
    drop_cached_pages(path)
    first = time_write(path, 0)
    second = time_write(path, 4096)
    return first, second


class CopyUpProbe:
    """Runs the copy-up samples of one daemon, reporting through its ProbeHooks."""

    def __init__(self, hooks: ProbeHooks, client, base_ref: str, labels: dict[str, str],
                 host: HostTarget | None, name_prefix: str):
        self.hooks = hooks
        self.spec = hooks.spec
        self.client = client
        self.base_ref = base_ref
        self.labels = labels
        self.host = host
        self.prefix = name_prefix
        self._images: dict[int, str] = {}

    def prepare(self, plan: CopyUpPlan) -> None:
        """One image per size (so a vfs container copies only its own file) and the host's files."""
        for size in plan.sizes_mib:
            self._images[size] = image_with_files(self.client, self.base_ref, {file_name(size): f"{size}m"},
                                                  self.labels, name=f"{self.prefix}-copyup-build-{size}m")
            if self.host is not None:
                text = precondition_job(f"{size}m").render(directory=self.host.fio_dir, filename=file_name(size))
                fio_run = self.host.run_fio(text, f"copyup-{size}m", 3600)
                parse_fio_output(fio_run.stdout, fio_run.stderr)

    def run(self, plan: CopyUpPlan, repeats: int) -> None:
        self.hooks.progress(f"[{self.spec}] copy-up: files of {', '.join(f'{s} MiB' for s in plan.sizes_mib)} "
                      "in a lower layer, a fresh container per sample")
        self.prepare(plan)
        placements = ("host", "union") if self.host is not None else ("union",)
        for r in range(repeats):
            for i, size in enumerate(plan.sizes_mib):
                order = placements if (r + i) % 2 == 0 else placements[::-1]
                for placement in order:
                    names = job_names(size)
                    if self.hooks.skip(placement, names["second_done"], r):
                        continue
                    first, second = (self._sample_host(size) if placement == "host"
                                     else self._sample_union(size, r))
                    params = {"size_mib": size}
                    self.hooks.emit(placement, names["first_write"], r, first.write_s, params)
                    self.hooks.emit(placement, names["first_done"], r, first.done_s, params)
                    self.hooks.emit(placement, names["second_write"], r, second.write_s, params)
                    self.hooks.emit(placement, names["second_done"], r, second.done_s, params)
                    self.hooks.done(placement, f"copyup {size}m", r,
                              f"first write {first.write_s * 1e3:.1f} ms (+fsync {first.done_s * 1e3:.1f}), "
                              f"second {second.write_s * 1e3:.2f} ms (+fsync {second.done_s * 1e3:.1f})")

    def _sample_host(self, size: int) -> tuple[WriteTiming, WriteTiming]:
        return sample_file(Path(self.host.fio_dir) / file_name(size))

    def _sample_union(self, size: int, repeat: int) -> tuple[WriteTiming, WriteTiming]:
        with fresh_container_root(self.client, self._images[size], f"{self.prefix}-copyup-{size}m-r{repeat}",
                                  self.labels) as root:
            return sample_file(root / LOWER_DIR.lstrip("/") / file_name(size))

    def cleanup(self) -> None:
        for image in self._images.values():
            remove_image(self.client, image)
        self._images.clear()
        if self.host is not None:
            for name in Path(self.host.fio_dir).glob("copyup-*m.dat"):
                name.unlink(missing_ok=True)
