"""What an ownership record names, derived again from the run's layout: each thing a run made, as an
object that says what of it is left and removes it.

A record's fields are read only for what identifies a thing (a spec's name, an index, a namespace
role, a daemon address that passes the CLI's own check); every path is computed by layout.py and a
recorded path that differs from it refuses the record. Nothing here follows a path, pid or name
from the record itself.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from storprof.engine import unionconfig
from storprof.engine.daemon import DOCKER_HOST, EphemeralDaemon
from storprof.engine.drivers import FILESYSTEMS
from storprof.harness.layout import SLUG, LayoutError, RunLayout, check_index
from storprof.host import mounts, safepath
from storprof.host.backing import BackingFS
from storprof.network.namespaces import NetNamespace

# The ownership record's format: version 2 records carry the keys things are derived from.
FORMAT = 2

Progress = Callable[[str], None]


class Owned(Protocol):
    @property
    def what(self) -> str: ...

    def leftover(self) -> list[str]: ...

    def remove(self, progress: Progress) -> list[str]: ...


def _same(rec: dict, key: str, computed: Path | str) -> None:
    """A recorded path must be the computed one (absent is fine: it is only there for people)."""
    recorded = rec.get(key)
    if recorded is not None and str(recorded) != str(computed):
        raise LayoutError(f"its {key} {str(recorded)[:120]!r} is not the one storprof computes ({computed})")


def _idx(rec: dict) -> int:
    return check_index(rec.get("index"))


def _text(rec: dict, key: str) -> str:
    value = rec.get(key)
    if not isinstance(value, str):
        raise LayoutError(f"its {key} is missing or not text")
    return value


@dataclass
class OwnedDir:
    """A scratch directory of the run: unmount anything left below it, then remove it."""

    path: Path

    @property
    def what(self) -> str:
        return f"directory {self.path}"

    def leftover(self) -> list[str]:
        return [self.what] if os.path.lexists(self.path) else []

    def remove(self, progress: Progress) -> list[str]:
        if not os.path.lexists(self.path):
            return []
        progress(f"removing {self.path}")
        warnings = mounts.unmount_below(self.path)
        if mounts.mounts_below(self.path):
            return warnings + [f"{self.path} still has mounts below it; not removed"]
        if safepath.is_dir_nofollow(self.path):
            shutil.rmtree(self.path)
        else:
            os.unlink(self.path)
        return warnings


@dataclass
class OwnedBacking:
    fs: BackingFS

    @property
    def what(self) -> str:
        return f"backing filesystem {self.fs.path}"

    def leftover(self) -> list[str]:
        return self.fs.leftover()

    def remove(self, progress: Progress) -> list[str]:
        if self.fs.leftover():
            progress(f"removing {self.fs.path}" + (f" and {self.fs.image}" if self.fs.is_loop else ""))
        return self.fs.teardown()


@dataclass
class OwnedDaemon:
    daemon: EphemeralDaemon

    @property
    def what(self) -> str:
        return f"dockerd of {self.daemon.spec_label}"

    def leftover(self) -> list[str]:
        return self.daemon.leftover()

    def remove(self, progress: Progress) -> list[str]:
        if self.daemon.leftover():
            progress(f"stopping dockerd of {self.daemon.spec_label} ({self.daemon.runtime_dir})")
        self.daemon.stop()
        return []


@dataclass
class OwnedNamespace:
    ns: NetNamespace

    @property
    def what(self) -> str:
        return f"network namespace {self.ns.name}"

    def leftover(self) -> list[str]:
        return self.ns.leftover()

    def remove(self, progress: Progress) -> list[str]:
        if self.ns.exists():
            progress(f"deleting network namespace {self.ns.name}")
        self.ns.delete()
        return []


@dataclass
class OwnedOverlay:
    """overlay module parameters a session switched on: `before` holds only switchable names and
    the kernel's own values; the directory is the kernel's, never a recorded one."""

    before: dict[str, str]
    root: Path

    @property
    def what(self) -> str:
        return "overlay parameters"

    def _record(self) -> dict:
        return {"before": self.before, "set": dict.fromkeys(self.before, "Y")}

    def leftover(self) -> list[str]:
        return unionconfig.still_set(self._record(), self.root)

    def remove(self, progress: Progress) -> list[str]:
        for done in unionconfig.put_back(self._record(), self.root):
            progress(f"put back {done}")
        return []


@dataclass
class OwnedAttached:
    """A run's labelled objects on a daemon someone else runs."""

    docker_host: str
    run_id: str
    layout: RunLayout

    @property
    def what(self) -> str:
        return f"objects labelled {self.run_id} on {self.docker_host}"

    def leftover(self) -> list[str]:
        from storprof.engine.attached import labelled
        return labelled(self.docker_host, self.run_id)

    def remove(self, progress: Progress) -> list[str]:
        from storprof.engine.attached import remove_labelled
        return remove_labelled(self.docker_host, self.layout, progress)


def _backing(rec: dict, layout: RunLayout) -> OwnedBacking:
    slug, fs = _slug(rec), _text(rec, "fs")
    if fs not in FILESYSTEMS:
        raise LayoutError(f"{fs[:40]!r} is not a filesystem storprof makes")
    _same(rec, "path", layout.backing_path(slug))
    if rec.get("image") is not None:
        _same(rec, "image", layout.backing_image(slug))
    return OwnedBacking(BackingFS.adopt(fs, layout.workdir, layout.backing_name(slug)))


def _slug(rec: dict) -> str:
    slug = _text(rec, "slug")
    if not SLUG.fullmatch(slug):
        raise LayoutError(f"{slug[:80]!r} is not a spec name storprof makes")
    return slug


def _daemon(rec: dict, layout: RunLayout) -> OwnedDaemon:
    index = _idx(rec)
    netns: str | None = None
    if "role" in rec:
        role = _text(rec, "role")
        data_root, runtime, netns = layout.net_root(role, index) / "docker", layout.net_runtime_dir(role, index), \
            layout.netns(role, index)
        _same(rec, "netns", netns)
    else:
        data_root, runtime = layout.data_root(_slug(rec)), layout.runtime_dir(index)
        if rec.get("netns") is not None:
            raise LayoutError("a storage daemon runs in no namespace")
    _same(rec, "data_root", data_root)
    _same(rec, "runtime_dir", runtime)
    label = f"{str(rec.get('spec', '?'))[:80]}"
    return OwnedDaemon(EphemeralDaemon(label, "adopted", data_root, runtime, Path(os.devnull), netns=netns))


def _dir(rec: dict, layout: RunLayout) -> OwnedDir:
    what = rec.get("what")
    if what == "run":
        path = layout.run_dir
    elif what == "net":
        path = layout.net_root(_text(rec, "role"), _idx(rec))
    else:
        raise LayoutError(f"a directory of kind {str(what)[:20]!r} is not one storprof makes")
    _same(rec, "path", path)
    return OwnedDir(path)


def _overlay(rec: dict, root: Path) -> OwnedOverlay:
    before = rec.get("before")
    if not isinstance(before, dict) or not before:
        raise LayoutError("it lists no parameters")
    for name, value in before.items():
        if name not in unionconfig.SWITCHABLE or value not in unionconfig.VALUES:
            raise LayoutError(f"{str(name)[:40]}={str(value)[:10]} is not a parameter and value storprof switches")
    return OwnedOverlay(dict(before), root)


def _attached(rec: dict, layout: RunLayout) -> OwnedAttached:
    host = _text(rec, "docker_host")
    if not DOCKER_HOST.fullmatch(host):
        raise LayoutError(f"{host[:80]!r} is not a daemon address storprof accepts")
    return OwnedAttached(host, layout.run_id, layout)


def derive(rec: dict, layout: RunLayout, overlay_root: Path = unionconfig.OVERLAY_PARAMS) -> Owned | None:
    """The thing a record names, computed from the layout (None for the owner's own line); raises
    LayoutError for a record storprof would not have written. `overlay_root` is the code's to give
    (tests point it at a directory of their own), never the record's."""
    kind = rec.get("kind")
    if kind == "run":
        if rec.get("format") != FORMAT:
            raise LayoutError(f"written by an older storprof (ownership record format {rec.get('format')!r}, "
                              f"not {FORMAT}): clean it by hand, see docs/safety.md")
        return None
    if kind == "dir":
        return _dir(rec, layout)
    if kind == "backing":
        return _backing(rec, layout)
    if kind == "daemon":
        return _daemon(rec, layout)
    if kind == "netns":
        return OwnedNamespace(NetNamespace(layout.netns(_text(rec, "role"), _idx(rec))))
    if kind == "overlay":
        return _overlay(rec, overlay_root)
    if kind == "attached":
        return _attached(rec, layout)
    raise LayoutError(f"{str(kind)[:20]!r} is not a kind of thing storprof makes")
