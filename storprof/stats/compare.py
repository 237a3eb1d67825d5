"""`storprof compare A B`: did it get faster or slower, and is that real?

Two kinds of rows, for every (driver spec, placement, job) both sweeps measured:
- the raw value (IOPS, bytes/s, seconds, p99) of each repeat, A against B;
- the within-sweep ratio to host (each repeat's run over the host run of the same repeat), A against
  B: the ratio cancels drift of the machine between the two sweeps, so it is the steadier row for
  "did the driver's cost change".
Each row is Welch's t-test on the logs (a change by a factor is symmetric there). With hundreds of
rows, some would pass p < 0.05 by chance alone; the rows are therefore called real by the
Benjamini-Hochberg procedure, which keeps the expected share of false discoveries among the rows
it calls real at 5%. Welch, not Mann-Whitney U: with 3 repeats a side Mann-Whitney's smallest
possible two-sided p is 0.10. Before any row, the two sweeps' settings are compared: a job
measured with other sizes or runtimes cannot be compared and its rows are left out with the reason;
other differences (fio, dockerd, kernel, host) are listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from storprof.errors import UserError
from storprof.results import ResultSet
from storprof.results.records import FioRecord, NetRecord
from storprof.stats.intervals import benjamini_hochberg, welch_log_p
from storprof.stats.summary import latency_p99, paired_ratio, primary_value

ALPHA = 0.05
KEY = ["driver_spec", "placement", "job"]
COLUMNS = KEY + ["metric", "n_a", "n_b", "a", "b", "ratio", "p_value", "q_value", "verdict"]
# For these metrics more is better; for the others (latency, time) less is.
HIGHER_IS_BETTER = {"iops", "bw", "ratio to host", "bits_per_second", "requests_per_second"}
# storprof net's latency over the host's, paired by round: more is slower.
LATENCY_RATIO = "latency ratio to host"
# A probe's ratio to host is a multiplier of time: more is slower.
TIME_RATIO = "time ratio to host"
# The settings a job's rows depend on: a difference makes its rows incomparable.
JOB_SETTINGS = ("size", "runtime", "ramp_time", "rw", "nrfiles")


@dataclass
class Comparison:
    table: pd.DataFrame
    differences: list[str] = field(default_factory=list)     # settings in which A and B differ
    left_out: list[str] = field(default_factory=list)        # jobs that could not be compared, and why


def welch_p_value(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test on the logs of A's and B's repeats."""
    return welch_log_p(a, b)


def verdict(metric: str, ratio: float | None, q: float | None, alpha: float = ALPHA) -> str:
    if q is None:
        return "cannot tell (too few repeats)"
    if q >= alpha or ratio is None or ratio == 1:
        return "not significant"
    better = (ratio > 1) == (metric in HIGHER_IS_BETTER)
    return "faster" if better else "slower"


def measurements(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, metric): the primary value (IOPS, bytes/s or seconds), for fio its p99,
    and for every placement but host its ratio to the host run of the same repeat and run."""
    if runs.empty:
        return pd.DataFrame(columns=KEY + ["repeat", "metric", "value"])
    ok = runs[runs["status"] == "ok"].copy()
    if "workload" in ok:       # a depth search's probes are of different depths: compared as a depth below
        ok = ok[ok["workload"] != "max-depth"]
    ok["primary"] = primary_value(ok)
    ok["p99"] = latency_p99(ok)
    rows = [ok[KEY + ["repeat"]].assign(metric=ok["primary_metric"], value=ok["primary"])]
    fio = ok[ok["primary_metric"] != "time"]
    rows.append(fio[KEY + ["repeat"]].assign(metric="p99_latency_ns", value=fio["p99"]))
    if "bytes" in ok:          # what a union operation copied up or cached; zero has no log, so it is left out
        sized = ok[ok["bytes"].astype(float) > 0]
        rows.append(sized[KEY + ["repeat"]].assign(metric="bytes", value=sized["bytes"].astype(float)))
    rows.append(_ratios(ok[ok["workload"].isin(("union-ops", "page-cache", "copyup", "deep-stack", "lookup"))
                           | (ok["primary_metric"] != "time")] if "workload" in ok else ok))
    out = pd.concat(rows, ignore_index=True)
    return out[out["value"].notna()]


def _ratios(ok: pd.DataFrame) -> pd.DataFrame:
    rows = []
    ok = ok.assign(value=ok["primary"])
    for (spec, job), cell in ok.groupby(["driver_spec", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        metric = TIME_RATIO if (cell["primary_metric"] == "time").all() else "ratio to host"
        for placement, g in cell.groupby("placement", sort=False):
            if placement == "host":
                continue
            for i, ratio in enumerate(paired_ratio(g, host, "value").tolist()):
                rows.append({"driver_spec": spec, "placement": placement, "job": job, "repeat": i,
                             "metric": metric, "value": ratio})
    return pd.DataFrame(rows, columns=KEY + ["repeat", "metric", "value"])


def net_measurements(records: list[NetRecord]) -> pd.DataFrame:
    """storprof net's runs in compare's shape: (net@engine, path, workload) with each metric's value,
    and every path's ratio to the host baseline of its namespace and round."""
    from storprof.network.plan import HOST, WORKLOADS
    from storprof.stats.network import HIGHER_IS_BETTER as RATES
    rows = []
    ok = [r for r in records if r.status == "ok"]
    host = {(r.engine, r.namespace, r.workload, r.repeat): r for r in ok if r.path == HOST}
    for r in ok:
        spec = WORKLOADS.get(r.workload)
        if spec is None:
            continue
        where = f"{HOST}@{r.namespace}" if r.path == HOST else r.path
        base = dict(driver_spec=f"net@{r.engine}", placement=where, job=r.workload, repeat=r.repeat)
        for metric in (spec.metric, *spec.extra_metrics):
            value = r.metrics.get(metric)
            if value:
                rows.append({**base, "metric": metric, "value": float(value)})
        baseline = host.get((r.engine, r.namespace, r.workload, r.repeat))
        mine, theirs = r.metrics.get(spec.metric), baseline.metrics.get(spec.metric) if baseline else None
        if r.path != HOST and mine and theirs:
            rows.append({**base, "metric": "ratio to host" if spec.metric in RATES else LATENCY_RATIO,
                         "value": float(mine) / float(theirs)})
    return pd.DataFrame(rows, columns=KEY + ["repeat", "metric", "value"])


def compare(a: ResultSet, b: ResultSet, alpha: float = ALPHA) -> Comparison:
    """Every (driver, placement, job, metric) of A and B, largest change first; rows present in
    only one side say so. Raises UserError when the two have nothing comparable in common."""
    incomparable = _incomparable_jobs(a, b)
    keep = ~a.runs["job"].isin(incomparable) if not a.runs.empty else None
    ma = measurements(a.runs[keep] if keep is not None else a.runs)
    keep_b = ~b.runs["job"].isin(incomparable) if not b.runs.empty else None
    mb = measurements(b.runs[keep_b] if keep_b is not None else b.runs)
    net_seconds = {(r.get("net") or {}).get("seconds") for r in (a.meta, b.meta)}
    if a.of(NetRecord) and b.of(NetRecord) and len(net_seconds) > 1:
        incomparable["storprof net"] = "measured with --seconds " + " against ".join(
            str((m.get("net") or {}).get("seconds")) for m in (a.meta, b.meta))
    else:
        ma = pd.concat([ma, net_measurements(a.of(NetRecord))], ignore_index=True)
        mb = pd.concat([mb, net_measurements(b.of(NetRecord))], ignore_index=True)
    group = KEY + ["metric"]
    a_groups = {k: g["value"].astype(float).tolist() for k, g in ma.groupby(group, sort=False)}
    b_groups = {k: g["value"].astype(float).tolist() for k, g in mb.groupby(group, sort=False)}
    if not set(a_groups) & set(b_groups):
        why = f" ({'; '.join(f'{j}: {r}' for j, r in incomparable.items())})" if incomparable else ""
        raise UserError(f"the two results have no (driver, placement, job) in common to compare{why}")
    rows = [_row(k, a_groups.get(k), b_groups.get(k)) for k in list(a_groups) + [k for k in b_groups
                                                                                  if k not in a_groups]]
    q_values = benjamini_hochberg([row["p_value"] for row in rows])
    for row, q in zip(rows, q_values):
        row["q_value"] = q
        if not row["verdict"].startswith("only in"):
            row["verdict"] = verdict(row["metric"], row["ratio"], q, alpha)
    table = pd.DataFrame(rows, columns=COLUMNS)
    change = table["ratio"].map(lambda r: abs(math.log(r)) if r and r > 0 else -1.0)
    table = table.loc[change.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
    return Comparison(table, _differences(a, b), [f"{job}: {why}" for job, why in incomparable.items()])


def _row(key: tuple, va: list[float] | None, vb: list[float] | None) -> dict:
    ma = _geomean(va)
    mb = _geomean(vb)
    base = dict(zip(KEY + ["metric"], key), n_a=len(va or []), n_b=len(vb or []), a=ma, b=mb)
    if va is None or vb is None:
        return {**base, "ratio": None, "p_value": None, "verdict": "only in B" if va is None else "only in A"}
    return {**base, "ratio": mb / ma if ma and mb is not None else None, "p_value": welch_p_value(va, vb),
            "verdict": ""}


def _geomean(values: list[float] | None) -> float | None:
    positive = [v for v in values or [] if v and v > 0]
    return math.exp(sum(math.log(v) for v in positive) / len(positive)) if positive else None


def _job_settings(results: ResultSet) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in results.of(FioRecord):
        out.setdefault(r.job, {k: r.params.get(k) for k in JOB_SETTINGS})
    return out


def _incomparable_jobs(a: ResultSet, b: ResultSet) -> dict[str, str]:
    sa, sb = _job_settings(a), _job_settings(b)
    out = {}
    for job in sorted(set(sa) & set(sb)):
        diff = [f"{k} {sa[job][k]} against {sb[job][k]}" for k in JOB_SETTINGS if sa[job][k] != sb[job][k]]
        if diff:
            out[job] = "measured with " + ", ".join(diff)
    return out


def _differences(a: ResultSet, b: ResultSet) -> list[str]:
    out = []
    for key in ("hostname", "kernel", "cpu_model", "fio_version", "dockerd_version", "storprof_version"):
        va, vb = a.meta.get(key), b.meta.get(key)
        if va != vb:
            out.append(f"{key}: {va} against {vb}")
    da = {(r.context.driver_spec, r.context.docker_version) for r in a.of(FioRecord)}
    db = {(r.context.driver_spec, r.context.docker_version) for r in b.of(FioRecord)}
    for spec, version in sorted(da - db):
        other = next((v for s, v in db if s == spec), None)
        if other is not None:
            out.append(f"{spec} ran on Docker {version} against {other}")
    for key_of, value_of in ((lambda r: f"net@{r.engine}: Docker", lambda r: r.docker_version),
                             (lambda r: f"net@{r.engine}: {r.tool}", lambda r: r.tool_version)):
        va = {key_of(r): value_of(r) for r in a.of(NetRecord) if value_of(r)}
        vb = {key_of(r): value_of(r) for r in b.of(NetRecord) if value_of(r)}
        out += [f"{key} {va[key]} against {vb[key]}" for key in sorted(set(va) & set(vb)) if va[key] != vb[key]]
    depth_a, depth_b = deepest(a.runs), deepest(b.runs)
    for spec in sorted(set(depth_a) & set(depth_b)):
        if depth_a[spec] != depth_b[spec]:
            out.append(f"{spec}: deepest image that ran {depth_a[spec]} layers against {depth_b[spec]}")
    return out


def deepest(runs: pd.DataFrame) -> dict[str, int]:
    """Per spec, the deepest image its max-depth search ran (a single number, so listed, not tested)."""
    if runs.empty or "workload" not in runs or "param_ok" not in runs:
        return {}
    sel = runs[(runs["workload"] == "max-depth") & runs["param_ok"].map(lambda v: v is True)]
    return {str(spec): int(g["param_depth"].max()) for spec, g in sel.groupby("driver_spec")}


def summary_line(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    both = table[~table["verdict"].str.startswith("only in")]
    real = both["verdict"].isin(["faster", "slower"]).sum()
    only = len(table) - len(both)
    text = (f"{real} of {len(both)} rows differ (Welch's t-test on the logs, false discovery rate "
            f"{alpha:.0%} by Benjamini-Hochberg)")
    return text + (f"; {only} rows in only one of the two" if only else "")
