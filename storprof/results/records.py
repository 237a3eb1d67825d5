"""The results model: typed records, one JSON line each in results.jsonl.

Like pyperf's result files, every line carries a schema version and the context needed to read it
alone: which run, which driver spec on which backing filesystem, which Docker and kernel. The
context is one object (RunContext) that a session builds once; the records add what one
measurement is. `to_json`/`from_json` are the only way records become lines and lines records,
and `json_schema()` describes the same lines for other tools (storprof/results/schema/).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Union

SCHEMA_VERSION = 2

# Every measurement record carries these fields of its RunContext.
CONTEXT_FIELDS = ("run_id", "driver_spec", "driver", "fs", "docker_version", "kernel", "attached",
                  "mem_total_bytes", "driver_honours_direct_io", "loop_direct_io", "engine", "image_store",
                  "containerd_version", "driver_status", "overlay_params", "backing_mount_options")


@dataclass(frozen=True)
class Backing:
    """Where a spec's data root and host baseline live (see backing.py): not written to records
    beyond `loop_direct_io`, but what the session's workloads need to find their directories."""

    path: str
    fs: str
    is_loop: bool = False
    loop_device: str | None = None
    direct_io: bool | None = None


@dataclass(frozen=True)
class RunContext:
    """What is true of every measurement in one session: the run, the spec, the daemon, the machine."""

    run_id: str
    driver_spec: str
    driver: str
    fs: str
    docker_version: str = "unknown"
    kernel: str = ""
    attached: bool = False
    mem_total_bytes: int | None = None
    driver_honours_direct_io: bool | None = None
    loop_direct_io: bool | None = None
    engine: str = "system"                # the engine the spec named (engines.SYSTEM or a version)
    image_store: str = "graphdriver"      # or "containerd" (a snapshotter of the containerd image store)
    containerd_version: str = ""
    # What union costs depend on: the daemon's own words on its driver (e.g. Native Overlay Diff),
    # overlay's module parameters when the session's mounts were made, the backing fs's mount options.
    driver_status: dict[str, str] = field(default_factory=dict, compare=False)
    overlay_params: dict[str, str] = field(default_factory=dict, compare=False)
    backing_mount_options: str = ""
    backing: Backing | None = field(default=None, compare=False, repr=False)
    image: str | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONTEXT_FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunContext:
        return cls(**{name: data[name] for name in CONTEXT_FIELDS if name in data})


class Record:
    """Base of every record: `kind` names it in results.jsonl."""

    kind: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "schema_version": SCHEMA_VERSION}
        for f in fields(self):               # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "context":
                out.update(value.to_json())
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            elif value is not None or f.name in _KEEP_NONE:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        kwargs: dict[str, Any] = {}
        for f in fields(cls):                # type: ignore[arg-type]
            if f.name == "context":
                kwargs["context"] = RunContext.from_json(data)
            elif f.name in data:
                value = data[f.name]
                kwargs[f.name] = tuple(value) if isinstance(value, list) and f.type.startswith("tuple") else value
        return cls(**kwargs)


# Fields written even when None: they say "not measured" or "not known" in the lines people read.
_KEEP_NONE = {"error", "raw", "fio_version", "reason", "bytes_added", "bytes_per_container"}


@dataclass(frozen=True)
class FioRecord(Record):
    """One fio run of one job on one placement."""

    kind: ClassVar[str] = "fio"
    context: RunContext
    placement: str
    job: str
    repeat: int
    status: str                          # ok | failed
    primary_metric: str                  # iops | bw
    placement_detail: str = ""
    direct: bool = False
    lower_layer: bool = False
    own_files: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None               # fio's own output, relative to the results directory
    wall_seconds: float = 0.0
    fio_version: str | None = None
    fio_messages: tuple[str, ...] = ()   # what fio printed around its JSON
    error: str | None = None
    time: str = ""


@dataclass(frozen=True)
class ProbeRecord(Record):
    """One timed sample of a union probe (copy-up, deep stacks): seconds, less is better.

    Its row is named by fields, not by a label: the workload, the operation it timed, and the
    parameters that tell that operation's rows apart (None where a workload does not vary one).
    views/labels.py makes the text people read from these; nothing parses it back."""

    kind: ClassVar[str] = "probe"
    # The fields that name a probe row: two samples of one row differ only in placement and repeat.
    IDENTITY: ClassVar[tuple[str, ...]] = ("workload", "operation", "size_mib", "depth", "files", "file_bytes",
                                           "containers", "images", "scale")
    context: RunContext
    workload: str                # copyup | deep-stack | lookup | union-ops | page-cache | snapbench | ...
    operation: str               # what was timed: "first write", "first stat", "cold", "chown", "prepare", ...
    placement: str
    repeat: int
    seconds: float
    size_mib: int | None = None      # the file the operation works on (copy-up, chown, rename tree, read target)
    depth: int | None = None         # layers in the image (deep stacks)
    files: int | None = None         # files the operation touches (lookup, appends, rename tree)
    file_bytes: int | None = None    # each of those files' size, where it is not MiB (appends)
    containers: int | None = None    # readers of one file (page cache)
    images: int | None = None        # images the daemon holds (daemon start)
    scale: int | None = None         # pgbench's scale factor (postgres)
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    primary_metric: str = "time"
    time: str = ""
    bytes: int | None = None     # what the operation left on the disk or in the page cache, where it measures that
    error: str | None = None     # why a failed sample failed (status "failed"), e.g. pgbench's message

    @property
    def identity(self) -> tuple:
        """What names this record's row (ProbeRecord.IDENTITY's values): a resume key's part."""
        return tuple(getattr(self, name) for name in self.IDENTITY)

    @classmethod
    def identity_of(cls, **row: Any) -> tuple:
        """The identity a record made with these fields would have (unset fields None)."""
        unknown = set(row) - set(cls.IDENTITY)
        if unknown:
            raise TypeError(f"not identity fields of a probe record: {', '.join(sorted(unknown))}")
        return tuple(row.get(name) for name in cls.IDENTITY)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["metrics"] = {"seconds": out.pop("seconds")}
        if out.get("bytes") is not None:
            out["metrics"]["bytes"] = out["bytes"]
        out.pop("bytes", None)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeRecord:
        metrics = data.get("metrics") or {}
        return super().from_json({**data, "seconds": metrics.get("seconds"), "bytes": metrics.get("bytes")})


@dataclass(frozen=True)
class LayerRecord(Record):
    """One timed layer operation (storprof layers): what it was done to, and the bytes it left."""

    kind: ClassVar[str] = "layer"
    context: RunContext
    op: str
    seconds: float
    image: str | None = None             # bench | large | depth K
    image_mib: float | None = None
    layer_mib: int | None = None
    depth: int | None = None
    layers: int | None = None
    count: int | None = None
    sample: int | None = None
    per_container: float | None = None
    bytes_added: float | None = None
    bytes_per_container: float | None = None
    time: str = ""

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for name in ("bytes_added", "bytes_per_container"):     # only where the operation measures them
            if out.get(name) is None and name not in self._measures():
                out.pop(name, None)
        return out

    def _measures(self) -> tuple[str, ...]:
        return {"commit": ("bytes_added",), "bulk create": ("bytes_per_container",)}.get(self.op, ())

    @property
    def variant(self) -> str:
        """What distinguishes samples of one operation: the image, the layer size, the depth, the count."""
        if self.image:
            return self.image
        if self.layer_mib is not None:
            return f"{self.layer_mib} MiB"
        if self.depth is not None:
            return f"depth {self.depth}"
        return f"x{self.count}" if self.count is not None else ""


@dataclass(frozen=True)
class DriverRecord(Record):
    """How one driver spec ended: ok, skipped (with why) or failed (with why)."""

    kind: ClassVar[str] = "driver"
    run_id: str
    driver_spec: str
    driver: str
    fs: str
    status: str
    reason: str = ""
    runs: int = 0
    seconds: float = 0.0
    time: str = ""


@dataclass(frozen=True)
class NetRecord(Record):
    """One client run of `storprof net` over one network path (or the host baseline). Its context
    is the session's, as for storage records: the engine, the daemon's driver and filesystem, the
    host; repeats count from 0, as storage's do."""

    kind: ClassVar[str] = "net"
    context: RunContext
    namespace: str                       # which daemon's namespace: proxy (userland-proxy=true) or nat
    path: str                            # netplan.PATHS, "host" for the baseline
    workload: str                        # netplan.WORKLOADS
    repeat: int
    status: str                          # ok | failed | skipped
    tool: str = ""
    tool_version: str = ""
    target: str = ""                     # address:port the client dialled (inside the namespace)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None               # the client's own output, relative to the results directory
    error: str | None = None
    time: str = ""

    @property
    def run_id(self) -> str:
        return self.context.run_id

    @property
    def engine(self) -> str:
        """The engine the run named (engines.SYSTEM or a version)."""
        return self.context.engine

    @property
    def docker_version(self) -> str:
        return self.context.docker_version

    @property
    def kernel(self) -> str:
        return self.context.kernel


RECORD_TYPES: dict[str, type[Record]] = {cls.kind: cls for cls in (FioRecord, ProbeRecord, LayerRecord, DriverRecord,
                                                                   NetRecord)}
MEASUREMENTS = (FioRecord, ProbeRecord)


def record_from_json(data: dict[str, Any]) -> Record | None:
    """The record a JSON line holds; None for a kind this version does not know (kept, not read)."""
    cls = RECORD_TYPES.get(data.get("kind", ""))
    return cls.from_json(data) if cls else None


# ---------------------------------------------------------------------------------- JSON Schema

_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _schema_of(annotation: Any) -> dict[str, Any]:
    """JSON Schema of one annotation string as written in these dataclasses."""
    hint = eval(annotation, {**typing.__dict__, "Any": Any}) if isinstance(annotation, str) else annotation
    return _schema_of_type(hint)


def _schema_of_type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_schema_of_type(a) for a in typing.get_args(hint)]
        if not all("type" in o for o in options):
            return {}
        kinds = [k for o in options for k in (o["type"] if isinstance(o["type"], list) else [o["type"]])]
        return {"type": list(dict.fromkeys(kinds))}
    if origin is tuple or origin is list:
        return {"type": "array", "items": _schema_of_type(typing.get_args(hint)[0])}
    if origin is dict:
        return {"type": "object"}
    if hint is type(None):
        return {"type": "null"}
    if hint is float:
        return {"type": ["number", "integer"]}
    return {"type": _JSON_TYPES[hint.__name__]} if getattr(hint, "__name__", "") in _JSON_TYPES else {}


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of one line of results.jsonl, from the dataclasses above."""
    context = {f.name: _schema_of(f.type) for f in fields(RunContext) if f.name in CONTEXT_FIELDS}
    variants = []
    for kind, cls in RECORD_TYPES.items():
        props: dict[str, Any] = {"kind": {"const": kind}, "schema_version": {"const": SCHEMA_VERSION}}
        required = ["kind", "schema_version"]
        for f in fields(cls):                 # type: ignore[arg-type]
            if f.name == "context":
                props.update(context)
                required += ["run_id", "driver_spec", "driver", "fs"]
                continue
            props[f.name] = _schema_of(f.type)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        if cls is ProbeRecord:
            del props["seconds"], props["bytes"]
            required.remove("seconds")
            props["metrics"] = {"type": "object", "properties": {"seconds": {"type": ["number", "integer"]},
                                                                 "bytes": {"type": "integer"}},
                                "required": ["seconds"]}
            required.append("metrics")
        variants.append({"title": cls.__name__, "type": "object", "properties": props, "required": required})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"storprof results.jsonl line, schema version {SCHEMA_VERSION}",
            "oneOf": variants}


if __name__ == "__main__":       # python -m storprof.results.records > storprof/results/schema/results.schema.json
    import json
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
