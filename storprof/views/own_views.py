"""Views: the workloads whose records make tables of their own (summary.OWN_VIEWS), and the
union configuration each session found. Rows from records, no numbers of their own."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from storprof.engine.unionconfig import SWITCHABLE
from storprof.engine.versions import short as short_version
from storprof.stats.summary import docker_short
from storprof.storage import daemonstart, maxdepth, snapbench
from storprof.views.tables import fmt_seconds

CONFIG_HEADERS = ["driver", "daemon says", "overlay parameters", "backing mount options"]
CONFIG_NOTE = ("What union costs depend on, as each session found it: the daemon's driver status (docker info; "
               "Native Overlay Diff false means commits and builds diff by walking both trees), overlay's "
               "module parameters when the daemon mounted its layers (redirect_dir: a renamed lower directory "
               "is recorded, not copied; metacopy: chown/chmod copy metadata only), and the backing "
               "filesystem's mount options.")


def config_rows(runs: pd.DataFrame) -> list[list[str]]:
    """One row per driver spec: the configuration its records carry (records.RunContext)."""
    if runs.empty or "driver_spec" not in runs:
        return []
    rows = []
    for spec, g in runs.groupby("driver_spec", sort=False):
        first = g.iloc[0]
        status = first.get("driver_status") if isinstance(first.get("driver_status"), dict) else {}
        params = first.get("overlay_params") if isinstance(first.get("overlay_params"), dict) else {}
        said = ", ".join(f"{k}: {v}" for k, v in status.items() if k not in ("Backing Filesystem", "Supports d_type"))
        on = " ".join(f"{k}={v}" for k, v in params.items() if k in SWITCHABLE)   # all of them are in the records
        mount = first.get("backing_mount_options")
        if said or on or (isinstance(mount, str) and mount):     # results from before storprof recorded these: none
            rows.append([str(spec), said or "-", on or "-", mount if isinstance(mount, str) and mount else "-"])
    return rows


BENCH_HEADERS = ["driver", "docker", "layers", "n", "prepare / layer", "write / layer", "commit / layer",
                 "total", "x fastest"]


def _one_chain(g: pd.DataFrame) -> pd.DataFrame:
    """A spec's records of one chain: the one with the most records, the last such (a resumed
    spec may have a cut-off chain before it)."""
    if "param_chain" not in g or g["param_chain"].nunique() < 2:
        return g
    counts = g.groupby("param_chain", sort=False).size()
    best = counts[counts == counts.max()].index[-1]
    return g[g["param_chain"] == best]


def _multiple(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def bench_rows(runs: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per spec, as the original reports: prepare, write and commit, median per layer (±half the
    range, n layers), the total over all layers and stages, and that total as a multiple of the
    fastest spec's."""
    if runs.empty or "workload" not in runs:
        return BENCH_HEADERS, []
    sel = runs[runs["workload"] == snapbench.WORKLOAD]
    specs: list[tuple[str, str, str, int, list[str], float]] = []
    for spec, g in sel.groupby("driver_spec", sort=False):
        g = _one_chain(g)
        cells, total, n = [], 0.0, 0
        for stage in snapbench.STAGES:
            s = g[g["operation"] == stage]["seconds"].astype(float)
            if s.empty:
                cells.append("-")
                continue
            med = float(s.median())
            spread = (s.max() - s.min()) / 2 / med if len(s) > 1 and med else None
            cells.append(fmt_seconds(med) + (f" ±{spread * 100:.0f}%" if spread is not None else " ±?"))
            total += float(s.sum())
            n = max(n, len(s))
        first = g.iloc[0]
        shape = (f"{int(first['param_layers'])}×{int(first['param_files'])}×{int(first['param_file_kib'])} KiB"
                 if "param_layers" in g else "?")
        docker_version = str(first.get("docker_version", "?")).split("+")[0]
        specs.append((str(spec), docker_version, shape, n, cells, total))
    fastest = min((t for *_, t in specs if t > 0), default=0.0)
    rows = [[spec, version, shape, str(n), *cells, fmt_seconds(total), _multiple(total / fastest) if fastest else "-"]
            for spec, version, shape, n, cells, total in specs]
    return BENCH_HEADERS, rows


DEPTH_HEADERS = ["driver", "docker", "deepest that ran", "first that failed", "at", "error", "probes"]


def depth_rows(runs: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per spec: the deepest image that ran, the shallowest that failed, where and why."""
    rows: list[list[str]] = []
    if runs.empty or "workload" not in runs:
        return DEPTH_HEADERS, rows
    probes = runs[runs["workload"] == maxdepth.WORKLOAD]
    for spec, g in probes.groupby("driver_spec", sort=False):
        ok = g[g["param_ok"].map(lambda v: v is True)]
        bad = g[g["param_ok"].map(lambda v: v is False)].sort_values("param_depth")
        first = bad.iloc[0] if not bad.empty else None
        deepest = str(int(ok["param_depth"].max())) if not ok.empty else "none"
        if first is None:
            rows.append([str(spec), docker_short(g), deepest, f"none up to {int(g['param_ceiling'].max())}", "", "",
                         str(len(g))])
        else:
            rows.append([str(spec), docker_short(g), deepest, str(int(first["param_depth"])), str(first["param_stage"]),
                         maxdepth.shorten(str(first["param_error"])), str(len(g))])
    return DEPTH_HEADERS, rows


START_HEADERS = ["driver", "docker", "images", "n", "start", "x 0 images", "listed", "images, containers present"]


def start_rows(runs: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per spec and image count: the median start (±half the range, as a share of the median), its
    multiple of the start with no extra images, the median until the images were listed, and what
    the daemon reported present (the bench image, and what other workloads kept, come on top)."""
    rows: list[list[str]] = []
    if runs.empty or "workload" not in runs:
        return START_HEADERS, rows
    sel = runs[runs["workload"] == daemonstart.WORKLOAD]
    for spec, g in sel.groupby("driver_spec", sort=False):
        by = g.groupby(g["images"].astype(int))
        base = float(by.get_group(0)["seconds"].median()) if 0 in by.groups else None
        docker_version = short_version(str(g["docker_version"].iloc[0])) if "docker_version" in g else "?"
        for count, s in sorted(by, key=lambda kv: kv[0]):
            seconds = s["seconds"].astype(float)
            med = float(seconds.median())
            spread = f" ±{(seconds.max() - seconds.min()) / 2 / med * 100:.0f}%" if len(s) > 1 and med else " ±?"
            listed = (fmt_seconds(float(s["param_images_listed_seconds"].median()))
                      if "param_images_listed_seconds" in s and s["param_images_listed_seconds"].notna().any()
                      else "-")
            rows.append([str(spec), docker_version, str(count), str(len(s)), fmt_seconds(med) + spread,
                         f"{med / base:.2f}x" if base else "-", listed,
                         f"{_range(s, 'param_images_present')}, {_range(s, 'param_containers_present')}"])
    return START_HEADERS, rows


def _range(s: pd.DataFrame, column: str) -> str:
    values = s[column].dropna().astype(int) if column in s else pd.Series(dtype=int)
    if values.empty:
        return "-"
    return str(values.min()) if values.min() == values.max() else f"{values.min()}-{values.max()}"


SNAPBENCH_NOTE = ("Per layer of a chain (containerd's snapshots/benchsuite shape): prepare = create and start a "
                  "container of the layer below, write = new files and 4-byte writes into the middle of files of "
                  "lower layers, commit = docker commit; median per layer (±half the range) over the layers.")
DEPTH_NOTE = ("A search over image depth: each probe loads an image of K layers, then creates and starts a "
              "container and reads a file in its bottom layer; the first depth that fails and its error.")
START_NOTE = ("dockerd stopped and started again on the same data root holding N extra images: seconds until "
              "its API answers, median (±half the range) over the restarts; x 0 images: against the start with none.")


# (workload, title, rows of its records, note): the tables the views show for it.
OWN_TABLES = (
    (snapbench.WORKLOAD, "containerd's snapshotter benchmark, through Docker", bench_rows, SNAPBENCH_NOTE),
    (maxdepth.WORKLOAD, "The deepest image each driver creates and runs", depth_rows, DEPTH_NOTE),
    (daemonstart.WORKLOAD, "Daemon start against the images it holds", start_rows, START_NOTE),
)


def own_view_tables(runs: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The workloads with tables of their own (summary.OWN_VIEWS): title, headers, rows, note."""
    out: list[tuple[str, list[str], list[list[str]], str]] = []
    if runs.empty or "workload" not in runs:
        return out
    for workload, title, rows_of, note in OWN_TABLES:
        if (runs["workload"] == workload).any():
            headers, rows = rows_of(runs)
            if rows:
                out.append((title, headers, rows, note))
    return out


def format_own_views(runs: pd.DataFrame, fmt: str = "simple") -> str:
    parts = []
    rows = config_rows(runs)
    if rows:
        parts += ["Union configuration", tabulate(rows, headers=CONFIG_HEADERS, tablefmt=fmt, disable_numparse=True),
                  ""]
    for title, headers, rows, note in own_view_tables(runs):
        parts += [title, tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True), note, ""]
    return "\n".join(parts)
