"""How far the same configuration lands apart between sessions on this machine: compare's noise.

The repeats of one sweep run seconds apart, in one session (one daemon, one backing filesystem),
and drift together; sessions run minutes apart and do not. Two identical back-to-back sweeps were
called different in 3 of 10 rows when the repeats were taken as the samples (issue 29). So the
unit of replication is the session: a row's difference counts only against the variance between
sessions of a quantity that is the same in every session, measured from the sweeps themselves.

- A raw row (a metric of one spec, placement and job): every session measures the same host
  baseline on its backing filesystem, so the drift of (job, metric, filesystem) is the variance
  between sessions of the host's log median.
- A ratio row (placement ÷ host): the A/A control (host-aa ÷ host, truly 1.00x) of that job where
  the sweeps ran it, else bind and volume ÷ host (a bind mount or volume of the backing directory
  whatever the driver, so the same quantity in every session; a real difference between engines
  would only make the drift larger). A ratio with neither (the union probes) is not yet known.

Deviations are taken from each sweep's own mean and pooled (a real difference between the two
sweeps does not inflate the drift), with n - 1 degrees of freedom per sweep. A session's log
median already holds its own sampling noise, so the variance of a difference of two sessions is
2 τ² and nothing is added for the repeats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats as _scipy_stats

from storprof.storage.fio.placements import AA

HOST = "host"
CONTROLS = ("bind", "volume")
RATIO_METRICS = ("ratio to host", "time ratio to host")
SESSION_KEY = ["side", "session", "backing", "driver_spec", "placement", "job", "metric"]


@dataclass(frozen=True)
class Drift:
    """The variance between sessions of a log median (τ², per session), and what it was read from."""

    var_log: float | None     # None when no sweep had two sessions of it
    df: int                   # pooled degrees of freedom: sessions less one per sweep
    sessions: int             # sessions that measured it, over all sweeps
    source: str               # "host", "A/A" or "bind/volume"

    @property
    def known(self) -> bool:
        return self.df > 0 and self.var_log is not None

    @property
    def relative(self) -> float | None:
        """One session's drift as a fraction: 0.04 is ±4% between sessions."""
        if self.var_log is None or not self.known:
            return None
        return math.exp(math.sqrt(self.var_log)) - 1

    def note(self) -> str:
        if not self.known:
            return f"not measured: one session per side ({self.source})"
        return f"±{self.relative:.1%} between sessions ({self.source}, n={self.sessions})"

    def p_value(self, d: float) -> float | None:
        """Two-sided p of a difference d of two sessions' log medians against this drift."""
        if self.var_log is None or not self.known:
            return None
        se = math.sqrt(2 * self.var_log)
        if se == 0:
            return 1.0 if d == 0 else 0.0
        return float(2 * _scipy_stats.t.sf(abs(d) / se, self.df))


NO_BASELINE = "not measured: no host baseline of this job"
NO_CONTROL = "not measured: no A/A or bind/volume control of this job"


def session_logs(measured: pd.DataFrame, side: str) -> pd.DataFrame:
    """One row per (session, spec, placement, job, metric) of a sweep: the log of its median."""
    rows = measured[measured["session"].notna() & (measured["value"] > 0)]
    if rows.empty:
        return pd.DataFrame(columns=SESSION_KEY + ["log"])
    medians = rows.groupby(SESSION_KEY[1:], sort=False, dropna=False)["value"].median()
    out = medians.map(math.log).rename("log").reset_index()
    return out.assign(side=side)[SESSION_KEY + ["log"]]


def _pooled(logs: pd.DataFrame, within: list[str], source: str) -> Drift:
    ss, df = 0.0, 0
    for _, group in logs.groupby(within, sort=False, dropna=False):
        values = group["log"].tolist()
        if len(values) > 1:
            mean = sum(values) / len(values)
            ss += sum((x - mean) ** 2 for x in values)
            df += len(values) - 1
    return Drift(ss / df if df else None, df, len(logs), source)


def drift_of(logs: pd.DataFrame) -> dict[tuple, Drift]:
    """Every (kind, job, metric, backing) the sweeps' sessions measure a drift for; kind is 'raw'
    (the host baseline) or 'ratio' (the A/A control, else bind/volume)."""
    if logs.empty:
        return {}
    out: dict[tuple, Drift] = {}
    raw = logs[(logs["placement"] == HOST) & ~logs["metric"].isin(RATIO_METRICS)]
    for (job, metric, backing), group in raw.groupby(["job", "metric", "backing"], sort=False):
        out["raw", job, metric, backing] = _pooled(group, ["side"], HOST)
    ratios = logs[logs["metric"].isin(RATIO_METRICS)]
    for placements, source in (((AA,), "A/A"), (CONTROLS, "bind/volume")):
        controls = ratios[ratios["placement"].isin(placements)]
        for (job, metric, backing), group in controls.groupby(["job", "metric", "backing"], sort=False):
            found = _pooled(group, ["side", "placement"], source)
            if ("ratio", job, metric, backing) not in out or not out["ratio", job, metric, backing].known:
                out["ratio", job, metric, backing] = found
    return out


def drift_for(drifts: dict[tuple, Drift], job: str, metric: str, backing: str | None) -> Drift | str:
    """The drift a row of (job, metric) on a backing filesystem is tested against, or why there is none."""
    kind = "ratio" if metric in RATIO_METRICS else "raw"
    found = drifts.get((kind, job, metric, backing))
    if found is not None:
        return found
    return NO_CONTROL if kind == "ratio" else NO_BASELINE


def backing_of(spec: str) -> str | None:
    """The backing filesystem a spec's name says: 'overlay2@ext4:28.5.2+metacopy' is on ext4."""
    if "@" not in spec:
        return None
    return spec.split("@", 1)[1].split(":", 1)[0].split("+", 1)[0] or None
