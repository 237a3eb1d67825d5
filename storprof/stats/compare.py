"""`storprof compare A B`: did it get faster or slower, and is that real?

Two kinds of rows, for every (driver spec, placement, job) both sweeps measured:
- the raw value (IOPS, bytes/s, seconds, p99), the median of A's repeats against B's;
- the within-sweep ratio to host (each repeat's run over the host run of the same repeat), A against
  B: the ratio cancels drift of the machine within a session, so it is the steadier row for "did the
  driver's cost change".
The unit of replication is the session, not the repeat: each spec runs in a session of its own,
minutes from the next, and repeats seconds apart drift together (two identical sweeps back to back
had 3 of 10 rows called different when the repeats were the samples; issue 29). So a row's B/A is
tested against the drift between sessions of the same configuration, measured from the sweeps'
own sessions (stats/drift.py): a t-test of the log of B/A with SE sqrt(2 τ²). Where the sweeps hold
one session per backing filesystem a side, the drift is not measured and the row is "not yet
known", never called different. With hundreds of rows some would pass p < 0.05 by chance alone;
rows are therefore called real by the Benjamini-Hochberg procedure, which keeps the expected share
of false discoveries among the rows it calls real at 5%. storprof net's rows keep Welch's t-test on
the logs of its rounds (each round runs every path in turn, minutes from the next). Before any
row, the two sweeps' settings are compared: a job measured with other sizes or runtimes cannot be
compared and its rows are left out with the reason; other differences (fio, dockerd, kernel, host)
are listed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import pandas as pd

from storprof.errors import UserError
from storprof.results import ResultSet
from storprof.results.records import FioRecord, NetRecord
from storprof.stats.drift import Drift, backing_of, drift_for, drift_of, session_logs
from storprof.stats.intervals import benjamini_hochberg, welch_log_p
from storprof.stats.summary import latency_p99, paired_ratio, primary_value

ALPHA = 0.05
KEY = ["driver_spec", "placement", "job"]
SESSION = ["session", "backing"]      # which session (daemon) a run is of, and its backing filesystem
COLUMNS = KEY + ["metric", "n_a", "n_b", "a", "b", "ratio", "p_value", "q_value", "drift", "drift_df",
                 "drift_note", "verdict"]
NOT_YET_KNOWN = "not yet known"
# storprof net's rows: its rounds are the samples (see the module's docstring)
WELCH_NOTE = "rounds (Welch)"
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
        return pd.DataFrame(columns=KEY + SESSION + ["repeat", "metric", "value"])
    ok = runs[runs["status"] == "ok"].copy()
    if "workload" in ok:       # a depth search's probes are of different depths: compared as a depth below
        ok = ok[ok["workload"] != "max-depth"]
    ok["session"] = ok["driver_spec"].astype(str)
    if "run_id" in ok:         # each spec runs in a session of its own; a resumed sweep is another
        ok["session"] = ok["run_id"].astype(str) + "/" + ok["session"]
    fs = ok["fs"] if "fs" in ok else pd.Series(None, index=ok.index, dtype=object)
    ok["backing"] = fs.where(fs.notna(), ok["driver_spec"].map(backing_of))
    ok["primary"] = primary_value(ok)
    ok["p99"] = latency_p99(ok)
    cols = KEY + SESSION + ["repeat"]
    rows = [ok[cols].assign(metric=ok["primary_metric"], value=ok["primary"])]
    fio = ok[ok["primary_metric"] != "time"]
    rows.append(fio[cols].assign(metric="p99_latency_ns", value=fio["p99"]))
    if "bytes" in ok:          # what a union operation copied up or cached; zero has no log, so it is left out
        sized = ok[ok["bytes"].astype(float) > 0]
        rows.append(sized[cols].assign(metric="bytes", value=sized["bytes"].astype(float)))
    paired = ("union-ops", "page-cache", "copyup", "deep-stack", "lookup", "build", "postgres")
    rows.append(_ratios(ok[ok["workload"].isin(paired) | (ok["primary_metric"] != "time")] if "workload" in ok else ok))
    out = pd.concat(rows, ignore_index=True)
    return out[out["value"].notna()]


def _ratios(ok: pd.DataFrame) -> pd.DataFrame:
    rows = []
    ok = ok.assign(value=ok["primary"])
    for (session, spec, job), cell in ok.groupby(["session", "driver_spec", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        metric = TIME_RATIO if (cell["primary_metric"] == "time").all() else "ratio to host"
        for placement, g in cell.groupby("placement", sort=False):
            if placement == "host":
                continue
            for i, ratio in enumerate(paired_ratio(g, host, "value").tolist()):
                rows.append({"driver_spec": spec, "placement": placement, "job": job, "session": session,
                             "backing": g["backing"].iloc[0], "repeat": i, "metric": metric, "value": ratio})
    return pd.DataFrame(rows, columns=KEY + SESSION + ["repeat", "metric", "value"])


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
    return pd.DataFrame(rows, columns=KEY + SESSION + ["repeat", "metric", "value"])


def _measured(results: ResultSet, left_out: dict[str, str]) -> pd.DataFrame:
    runs = results.runs
    return measurements(runs[~runs["job"].isin(left_out)] if not runs.empty else runs)


def compare(a: ResultSet, b: ResultSet, alpha: float = ALPHA, drift: list[ResultSet] | tuple = ()) -> Comparison:
    """Every (driver, placement, job, metric) of A and B, largest change first; rows present in
    only one side say so. `drift`: more sweeps of the same configuration on this host, whose
    sessions add to the drift's estimate (`compare --drift DIR`). Raises UserError when the two
    have nothing comparable in common."""
    incomparable = _incomparable_jobs(a, b)
    ma, mb = _measured(a, incomparable), _measured(b, incomparable)
    net_seconds = {(r.get("net") or {}).get("seconds") for r in (a.meta, b.meta)}
    if a.of(NetRecord) and b.of(NetRecord) and len(net_seconds) > 1:
        incomparable["storprof net"] = "measured with --seconds " + " against ".join(
            str((m.get("net") or {}).get("seconds")) for m in (a.meta, b.meta))
    else:
        ma = pd.concat([ma, net_measurements(a.of(NetRecord))], ignore_index=True)
        mb = pd.concat([mb, net_measurements(b.of(NetRecord))], ignore_index=True)
    calibrations = [_measured(c, {**incomparable, **_incomparable_jobs(a, c)}) for c in drift]
    drifts = drift_of(_once_each(session_logs(m, side) for m, side in
                                 [(ma, "A"), (mb, "B")] + [(c, f"drift {i}") for i, c in enumerate(calibrations)]))
    group = KEY + ["metric"]
    a_groups = {k: g["value"].astype(float).tolist() for k, g in ma.groupby(group, sort=False)}
    b_groups = {k: g["value"].astype(float).tolist() for k, g in mb.groupby(group, sort=False)}
    if not set(a_groups) & set(b_groups):
        why = f" ({'; '.join(f'{j}: {r}' for j, r in incomparable.items())})" if incomparable else ""
        raise UserError(f"the two results have no (driver, placement, job) in common to compare{why}")
    sessions = pd.concat([ma, mb], ignore_index=True).drop_duplicates(group)
    tested_by = {tuple(r[:4]): (drift_for(drifts, r[2], r[3], r[5]) if isinstance(r[4], str) else None)
                 for r in sessions[group + ["session", "backing"]].itertuples(index=False)}
    rows = [_row(k, a_groups.get(k), b_groups.get(k), tested_by.get(k))
            for k in list(a_groups) + [k for k in b_groups if k not in a_groups]]
    q_values = benjamini_hochberg([row["p_value"] for row in rows])
    for row, q in zip(rows, q_values):
        row["q_value"] = q
        if not row["verdict"]:
            row["verdict"] = verdict(row["metric"], row["ratio"], q, alpha)
    table = pd.DataFrame(rows, columns=COLUMNS)
    change = table["ratio"].map(lambda r: abs(math.log(r)) if r and r > 0 else -1.0)
    table = table.loc[change.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
    return Comparison(table, _differences(a, b), [f"{job}: {why}" for job, why in incomparable.items()])


def _once_each(sides) -> pd.DataFrame:
    """The sides' session medians, a session (run id and spec) counted once: a directory compared
    with itself, or given again as --drift, holds no more sessions than it ran."""
    logs = pd.concat(list(sides), ignore_index=True)
    first_side = logs.groupby("session", sort=False)["side"].transform("first")
    return logs[logs["side"] == first_side]


def _row(key: tuple, va: list[float] | None, vb: list[float] | None, tested: Drift | str | None) -> dict:
    """A row of A against B: the medians, B/A, and the p of B/A against the drift between sessions
    (tested: the Drift, why there is none, or None for net's rounds, which Welch's test takes)."""
    ma, mb = _median(va), _median(vb)
    base = dict(zip(KEY + ["metric"], key), n_a=len(va or []), n_b=len(vb or []), a=ma, b=mb,
                drift=None, drift_df=None, drift_note=WELCH_NOTE if tested is None else None, verdict="")
    if va is None or vb is None:
        return {**base, "ratio": None, "p_value": None, "drift_note": None,
                "verdict": "only in B" if va is None else "only in A"}
    ratio = mb / ma if ma and mb else None
    if tested is None:
        return {**base, "ratio": ratio, "p_value": welch_p_value(va, vb)}
    if isinstance(tested, str):
        return {**base, "ratio": ratio, "p_value": None, "drift_note": tested, "verdict": NOT_YET_KNOWN}
    base.update(drift=tested.relative, drift_df=tested.df, drift_note=tested.note())
    if not tested.known:
        return {**base, "ratio": ratio, "p_value": None, "verdict": NOT_YET_KNOWN}
    return {**base, "ratio": ratio, "p_value": tested.p_value(math.log(ratio)) if ratio else None}


def _median(values: list[float] | None) -> float | None:
    positive = [v for v in values or [] if v and v > 0]
    return float(statistics.median(positive)) if positive else None


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
    unknown = (both["verdict"] == NOT_YET_KNOWN).sum()
    text = (f"{real} of {len(both)} rows differ by more than the drift between sessions on this host "
            f"(t-test of B/A against it, false discovery rate {alpha:.0%} by Benjamini-Hochberg)")
    if unknown:
        text += (f"; {unknown} not yet known: their drift between sessions is not measured (one session per "
                 "side; run two or more specs on the same backing filesystem, or add --drift DIR)")
    return text + (f"; {only} rows in only one of the two" if only else "")
