"""The report's charts: matplotlib figures rendered headless to PNG bytes.

matplotlib because it is the well-kept standard for static charts that need no browser or
JavaScript to view: the PNGs embed in one self-contained report.html and open anywhere. Each
function takes the tidy DataFrames the report already computes and returns (title, png) pairs;
nothing here reads files.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")                      # no display: charts are files
import matplotlib.pyplot as plt
import pandas as pd

from storprof.results.records import LayerRecord
from storprof.stats.summary import primary_value

Chart = tuple[str, bytes]
PLACEMENT_ORDER = ("union", "volume", "bind")
PERCENTILES = (("p50", "50"), ("p99", "99"), ("p999", "99.9"))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def ratio_charts(over: pd.DataFrame) -> list[Chart]:
    """One chart per fio job: each driver's placements as a ratio to host (summary.summarize's
    rows), error bars from the lowest to the highest paired ratio of the repeats."""
    ranges = over[(over["metric"] != "time") & (over["placement"] != "host") & over["ratio"].notna()]
    charts = []
    for job, g in ranges.groupby("job", sort=False):
        specs = list(dict.fromkeys(g["driver_spec"]))
        placements = [p for p in PLACEMENT_ORDER if p in set(g["placement"])]
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(specs) + 2), 3.6))
        width = 0.8 / max(1, len(placements))
        for i, p in enumerate(placements):
            sub = g[g["placement"] == p].set_index("driver_spec")
            xs, ys, lo, hi = [], [], [], []
            for x, spec in enumerate(specs):
                if spec in sub.index:
                    row = sub.loc[spec]
                    xs.append(x + (i - (len(placements) - 1) / 2) * width)
                    ys.append(row["ratio"])
                    lo.append(row["ratio"] - row["ratio_low"])
                    hi.append(row["ratio_high"] - row["ratio"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=p)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(specs)), specs, rotation=20, ha="right")
        ax.set_ylabel("x host (>1 faster)")
        ax.set_title(f"{job}: throughput as a ratio to the host")
        ax.legend(fontsize="small")
        charts.append((f"{job}: ratio to host", _png(fig)))
    return charts


def latency_percentiles(runs: pd.DataFrame) -> pd.DataFrame:
    """Per fio run p50, p99, p99.9 of what the caller waits for (the fsync where the job syncs,
    else the slower direction), then the median over repeats per (driver, job, placement)."""
    ok = runs[(runs["status"] == "ok") & (runs["primary_metric"] != "time")].copy()
    if ok.empty:
        return pd.DataFrame(columns=["driver_spec", "job", "placement", "p50", "p99", "p999"])
    for short, _ in PERCENTILES:
        sync = ok.get(f"sync_lat_{short}_ns", pd.Series(index=ok.index, dtype=float)).astype(float)
        clat = pd.concat([ok.get(f"read_clat_{short}_ns", pd.Series(index=ok.index, dtype=float)).astype(float),
                          ok.get(f"write_clat_{short}_ns", pd.Series(index=ok.index, dtype=float)).astype(float)],
                         axis=1).max(axis=1)
        ok[short] = sync.fillna(clat)
    return (ok.groupby(["driver_spec", "job", "placement"], sort=False)[["p50", "p99", "p999"]]
            .median().reset_index())


def latency_charts(runs: pd.DataFrame) -> list[Chart]:
    """One chart per fio job: p50, p99 and p99.9 latency of every driver and placement (log scale)."""
    lat = latency_percentiles(runs)
    charts = []
    for job, g in lat.groupby("job", sort=False):
        g = g.dropna(subset=["p50", "p99", "p999"], how="all")
        if g.empty:
            continue
        labels = [f"{r.driver_spec}\n{r.placement}" for r in g.itertuples()]
        fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) + 2), 3.8))
        width = 0.27
        for i, (short, name) in enumerate(PERCENTILES):
            ax.bar([x + (i - 1) * width for x in range(len(labels))], g[short] / 1e3, width, label=f"p{name}")
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="x-small")
        ax.set_ylabel("latency, µs (log)")
        ax.set_title(f"{job}: completion latency percentiles (median over repeats)")
        ax.legend(fontsize="small")
        charts.append((f"{job}: latency p50 / p99 / p99.9", _png(fig)))
    return charts


def union_operation_charts(runs: pd.DataFrame) -> list[Chart]:
    """Copy-up time per file size and deep-stack first stat per depth, each driver a line."""
    probes = runs[(runs["status"] == "ok") & (runs["primary_metric"] == "time")].copy()
    if probes.empty:
        return []
    probes["value"] = primary_value(probes)
    charts = []
    if "operation" not in probes:
        return []
    for workload, operation, x, scale, unit, xlabel, title, caption in (
            ("copyup", "first write+fsync", "size_mib", 1e3, "first write + fsync, ms (log)",
             "size of the lower-layer file, MiB", "Copy-up: the first 4 KiB write into a file of an image layer",
             "Copy-up time by file size"),
            ("deep-stack", "first stat", "depth", 1e6, "first stat(), µs (log)", "image depth, layers",
             "Deep stacks: looking up a file in the bottom layer", "Deep-stack lookup by depth")):
        sel = probes[(probes["workload"] == workload) & (probes["operation"] == operation)
                     & (probes["placement"] == "union")]
        if sel.empty or x not in sel:
            continue
        sel = sel.assign(x=sel[x].astype(float))
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for spec, g in sel.groupby("driver_spec", sort=False):
            m = g.groupby("x")["value"].agg(["median", "min", "max"]) * scale
            ax.errorbar(m.index, m["median"], yerr=[m["median"] - m["min"], m["max"] - m["median"]],
                        marker="o", capsize=3, label=spec)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize="small")
        charts.append((caption, _png(fig)))
    return charts


def layer_charts(records: list[LayerRecord]) -> list[Chart]:
    """Layer timing growth curves (commit by layer size, container create by depth) and space used."""
    layers = pd.DataFrame([r.to_json() for r in records])
    if layers.empty:
        return []
    charts = []
    for op, x, xlabel, title in (("commit", "layer_mib", "MiB written before the commit", "Commit time by layer size"),
                                 ("container create", "depth", "image depth, layers",
                                  "Container create time by image depth")):
        sel = layers[(layers["op"] == op)]
        if x not in sel or sel[x].isna().all():
            continue
        sel = sel[sel[x].notna()]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for spec, g in sel.groupby("driver_spec", sort=False):
            m = g.groupby(x)["seconds"].median() * 1e3
            ax.plot(m.index, m.values, marker="o", label=spec)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ms (median)")
        ax.set_title(title)
        ax.legend(fontsize="small")
        charts.append((title, _png(fig)))
    space = layers[(layers["op"] == "bulk create")]
    if "bytes_per_container" in space and space["bytes_per_container"].notna().any():
        m = space.groupby("driver_spec", sort=False)["bytes_per_container"].median() / 2**20
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
        ax.bar(range(len(m)), m.values)
        ax.set_xticks(range(len(m)), m.index, rotation=20, ha="right")
        ax.set_ylabel("MiB per container")
        ax.set_title("Space used in the data root per new container")
        charts.append(("Space used per container", _png(fig)))
    return charts


def heat_map(over: pd.DataFrame) -> Chart | None:
    """Driver spec x fio job, coloured by the union's ratio to host (log scale, blue faster, red
    slower), beside the same for the in-container baseline (bind, else volume): the container's
    own cost. A cell whose interval does not exclude 1.00 is drawn pale and hatched, with ≈ (no
    measurable difference) or ? (not yet known): not significant, and shown as such."""
    fio = over[(over["metric"] != "time") & over["ratio"].notna()]
    if fio.empty or "union" not in set(fio["placement"]):
        return None
    base = next((p for p in ("bind", "volume") if p in set(fio["placement"])), None)
    panels = [p for p in ("union", base) if p]
    specs, jobs = list(dict.fromkeys(fio["driver_spec"])), list(dict.fromkeys(fio["job"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 1.25 * len(jobs) * len(panels), 0.9 + 0.42 * len(specs)),
                             squeeze=False)
    cmap, norm = plt.get_cmap("RdBu"), matplotlib.colors.TwoSlopeNorm(vmin=-2.0, vcenter=0.0, vmax=2.0)
    for ax, placement in zip(axes[0], panels):
        sub = fio[fio["placement"] == placement].set_index(["driver_spec", "job"])
        for y, spec in enumerate(specs):
            for x, job in enumerate(jobs):
                if (spec, job) not in sub.index:
                    ax.add_patch(plt.Rectangle((x, y), 1, 1, color="#f4f4f4"))
                    continue
                _heat_cell(ax, x, y, sub.loc[(spec, job)], cmap, norm)
        ax.set_xlim(0, len(jobs))
        ax.set_ylim(len(specs), 0)
        ax.set_xticks([x + 0.5 for x in range(len(jobs))], jobs, rotation=25, ha="right", fontsize="small")
        ax.set_yticks([y + 0.5 for y in range(len(specs))], specs if ax is axes[0][0] else [""] * len(specs),
                      fontsize="small")
        ax.set_title(f"{placement} ÷ host" + (" (the container's own cost)" if placement != "union" else ""),
                     fontsize="medium")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0].tolist(), shrink=0.8,
                 label="log2 of the ratio (blue: faster than host)")
    return ("Heat map: throughput ratio to host per driver spec and job", _png(fig))


def _heat_cell(ax, x: int, y: int, row, cmap, norm) -> None:
    import math
    real = row["verdict"] == "real difference"
    colour = cmap(norm(math.log2(row["ratio"]))) if real else "#eeeeee"
    ax.add_patch(plt.Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="white",
                               hatch=None if real else "///", linewidth=1))
    mark = "" if real else (" ≈" if row["verdict"] == "no measurable difference" else " ?")
    mark += "".join(c for c in str(row.get("flags", "")) if c in "†§")      # a cache answers: see the flags
    ax.text(x + 0.5, y + 0.5, f"{row['ratio']:.2f}x{mark}", ha="center", va="center", fontsize="small",
            color="black" if not real or abs(math.log2(row["ratio"])) < 1.2 else "white")


def copied_up_chart(over: pd.DataFrame) -> Chart | None:
    """What each union operation left on the container's filesystem, per spec: MiB copied up by
    the small-file appends, the directory rename and the chown, and the page cache each further
    reader of one image file added."""
    union = over[(over["placement"] == "union") & over["bytes"].notna()] if "bytes" in over else over.iloc[0:0]
    if union.empty or "operation" not in union:
        return None
    kinds = [(("union-ops", "append"), "appends"), (("union-ops", "rename"), "dir rename"),
             (("union-ops", "chown"), "chown"), (("page-cache", "later reader"), "page cache per extra reader")]
    specs = list(dict.fromkeys(union["driver_spec"]))
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.45 * len(specs) * 1.2))
    height = 0.8 / len(kinds)
    for i, ((workload, operation), label) in enumerate(kinds):
        rows = union[(union["workload"] == workload) & (union["operation"] == operation)]
        sel = rows.set_index("driver_spec")["bytes"]
        values = [max(0.0, float(sel.get(s, float("nan")))) / 2**20 for s in specs]
        ax.barh([k + i * height for k in range(len(specs))], values, height=height, label=label)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(specs))])
    ax.set_yticklabels(specs, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("MiB (median over repeats)")
    ax.set_title("What a change to image files copies up, and what a further reader caches")
    ax.legend(fontsize="small", loc="lower right")
    return ("Copied up and cached per union operation", _png(fig))


def net_chart(rows: list[dict]) -> Chart | None:
    """One panel per workload: each network path's primary metric over its host baseline (the
    geometric mean of the paired rounds), error bars the 95% interval; netviews.records' rows."""
    from storprof.network.plan import WORKLOADS
    # each path against its host baseline, and docker-proxy against DNAT (the other pairings are in the table)
    main = [r for r in rows if r["metric"] == WORKLOADS[r["workload"]].metric and r["ratio"]
            and (r["against"] == "host" or r["path"].startswith("proxy-loopback vs"))]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in main)]
    if not workloads:
        return None
    per_panel = max(sum(1 for r in main if r["workload"] == w) for w in workloads)
    fig, axes = plt.subplots(len(workloads), 1, figsize=(9, len(workloads) * (0.9 + 0.24 * per_panel)),
                             squeeze=False)
    for ax, workload in zip(axes[:, 0], workloads):
        mine = [r for r in main if r["workload"] == workload]
        labels = [f"{r['path']} ({r['engine']})" if len({x['engine'] for x in main}) > 1 else r["path"] for r in mine]
        ys = range(len(mine))
        ratios = [r["ratio"] for r in mine]
        lo = [r["ratio"] - (r["ci_low"] or r["ratio"]) for r in mine]
        hi = [(r["ci_high"] or r["ratio"]) - r["ratio"] for r in mine]
        colours = ["#999999" if r["verdict"] != "real difference" else "#c0392b"
                   if (r["ratio"] < 1) == r["higher_is_better"] else "#2e86c1" for r in mine]
        ax.barh(list(ys), ratios, xerr=[lo, hi], capsize=3, color=colours)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(list(ys), labels, fontsize="small")
        ax.invert_yaxis()
        spec = WORKLOADS[workload]
        worse = "<1 slower" if spec.higher_is_better else ">1 slower"
        ax.set_title(f"{workload}: {spec.metric.replace('_', ' ')} over the baseline ({worse}; red/blue = a real "
                     "difference, grey = none shown)", fontsize="small")
    fig.tight_layout()
    return ("network paths against the host", _png(fig))
