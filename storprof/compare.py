"""`storprof compare A B`: did it get faster or slower, and is that real?

For every (driver spec, placement, job) and metric both sweeps measured: the median of A, the
median of B, the ratio B/A, and Welch's t-test (two-sided, unequal variances) on the repeats of the
two sweeps, significant when p < 0.05. Welch's test, not Mann-Whitney U: with the usual 3 repeats
a side, Mann-Whitney's smallest possible two-sided p is 0.10, so it could never call anything
significant. Pure functions over the runs DataFrames of two ResultSets.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from .errors import UserError
from .summary import latency_p99, primary_value

ALPHA = 0.05
KEY = ["driver_spec", "placement", "job"]
COLUMNS = KEY + ["metric", "n_a", "n_b", "a", "b", "ratio", "p_value", "verdict"]
# For these metrics more is better; for the others (latency, time) less is.
HIGHER_IS_BETTER = {"iops", "bw"}


def measurements(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, metric): the primary value (IOPS, bytes/s or seconds) and, for fio, p99."""
    if runs.empty:
        return pd.DataFrame(columns=KEY + ["repeat", "metric", "value"])
    ok = runs[runs["status"] == "ok"].copy()
    ok["primary"] = primary_value(ok)
    ok["p99"] = latency_p99(ok)
    rows = [ok[KEY + ["repeat"]].assign(metric=ok["primary_metric"], value=ok["primary"])]
    fio = ok[ok["primary_metric"] != "time"]
    rows.append(fio[KEY + ["repeat"]].assign(metric="p99_latency_ns", value=fio["p99"]))
    out = pd.concat(rows, ignore_index=True)
    return out[out["value"].notna()]


def welch_p_value(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test; None when the repeats cannot tell (fewer than 2 a side, or
    no variance at all on either side)."""
    if len(a) < 2 or len(b) < 2:
        return None
    if pd.Series(a).std() == 0 and pd.Series(b).std() == 0:
        return None
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return None if p is None or math.isnan(p) else float(p)


def verdict(metric: str, ratio: float | None, p: float | None, alpha: float = ALPHA) -> str:
    if p is None:
        return "cannot tell (too few repeats)"
    if p >= alpha or ratio is None or ratio == 1:
        return "not significant"
    better = (ratio > 1) == (metric in HIGHER_IS_BETTER)
    return "faster" if better else "slower"


def compare(a_runs: pd.DataFrame, b_runs: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Every (driver, placement, job, metric) of A and B, largest change first; rows present in
    only one side say so. Raises UserError when the two have nothing in common."""
    a, b = measurements(a_runs), measurements(b_runs)
    group = KEY + ["metric"]
    a_groups = {k: g["value"].astype(float).tolist() for k, g in a.groupby(group, sort=False)}
    b_groups = {k: g["value"].astype(float).tolist() for k, g in b.groupby(group, sort=False)}
    common = [k for k in a_groups if k in b_groups]
    if not common:
        raise UserError("the two results have no (driver, placement, job) in common; nothing to compare")
    rows = []
    for k in list(a_groups) + [k for k in b_groups if k not in a_groups]:
        va, vb = a_groups.get(k), b_groups.get(k)
        ma = float(pd.Series(va).median()) if va else None
        mb = float(pd.Series(vb).median()) if vb else None
        if va is None or vb is None:
            rows.append(dict(zip(group, k), n_a=len(va or []), n_b=len(vb or []), a=ma, b=mb, ratio=None,
                             p_value=None, verdict="only in B" if va is None else "only in A"))
            continue
        ratio = mb / ma if ma and mb is not None else None
        p = welch_p_value(va, vb)
        rows.append(dict(zip(group, k), n_a=len(va), n_b=len(vb), a=ma, b=mb, ratio=ratio, p_value=p,
                         verdict=verdict(k[3], ratio, p, alpha)))
    out = pd.DataFrame(rows, columns=COLUMNS)
    change = out["ratio"].map(lambda r: abs(math.log(r)) if r and r > 0 else -1.0)
    order = change.sort_values(ascending=False, kind="stable").index
    return out.loc[order].reset_index(drop=True)


def summary_line(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    both = table[~table["verdict"].str.startswith("only in")]
    significant = both["verdict"].isin(["faster", "slower"]).sum()
    only = len(table) - len(both)
    text = (f"{significant} of {len(both)} differences significant at {100 * (1 - alpha):.0f}% "
            f"(Welch's t-test on the repeats, two-sided)")
    return text + (f"; {only} rows in only one of the two" if only else "")
