"""The numbers behind `storprof net`'s views: medians, paired ratios to the host, intervals.

Pure functions over NetRecords. Every path's run is paired with the host baseline measured in the
same namespace and round; the host baselines of the two namespaces against each other are the
control (what the machine's noise alone looks like); docker-proxy against DNAT is paired by round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandas as pd

from storprof.network.plan import HOST, NAT, PATHS, PROXY, WORKLOADS
from storprof.results.records import NetRecord
from storprof.stats.intervals import DEFAULT_PRECISION, RatioInterval, classify, ratio_interval
from storprof.stats.summary import paired_ratio

# More is better for rates; for latencies less is.
HIGHER_IS_BETTER = frozenset({"bits_per_second", "requests_per_second", "tps"})
# The rows that are not "a path against its host baseline".
CONTROL = "host@proxy vs host@nat"
PROXY_VS_DNAT = "proxy-loopback vs dnat-loopback"


@dataclass(frozen=True)
class NetRow:
    """One (engine, workload, comparison, metric): medians of both sides, the paired ratio, a verdict."""

    engine: str
    docker_version: str
    workload: str
    path: str              # a path name, CONTROL or PROXY_VS_DNAT
    against: str           # what the ratio is over: "host" (its namespace's), or the other side
    metric: str
    higher_is_better: bool
    unit: str
    n: int
    value: float           # median of the path's runs
    base: float            # median of what it is compared with
    spread: float          # half the range over the median, of the path's runs
    interval: RatioInterval | None
    verdict: str
    failed: int = 0        # runs that failed or were skipped (not in n)
    reason: str = ""

    @property
    def slower_by(self) -> float | None:
        """How much worse than the baseline, as a fraction (0.15 = 15% worse; negative = better)."""
        if self.interval is None:
            return None
        r = self.interval.ratio
        return 1 - r if self.higher_is_better else r - 1


def frame(records: list[NetRecord], metric: str) -> pd.DataFrame:
    """(run_id, repeat, value) of the runs that ended ok with the metric: what paired_ratio pairs."""
    rows = [{"run_id": r.run_id, "repeat": r.repeat, metric: float(r.metrics[metric])} for r in records
            if r.status == "ok" and r.metrics.get(metric) not in (None, 0)]
    return pd.DataFrame(rows, columns=["run_id", "repeat", metric])


def _row(engine: str, version: str, workload: str, path: str, against: str, metric: str,
         a: list[NetRecord], b: list[NetRecord], precision: float) -> NetRow:
    higher = metric in HIGHER_IS_BETTER
    fa, fb = frame(a, metric), frame(b, metric)
    ratios = paired_ratio(fa, fb, metric)          # the storage half's pairing: same run, same round
    interval = ratio_interval(ratios.tolist())
    paired = ratios.index
    values = fa.groupby(["run_id", "repeat"])[metric].median().reindex(paired).tolist()
    bases = fb.groupby(["run_id", "repeat"])[metric].median().reindex(paired).tolist()
    med = statistics.median(values) if values else float("nan")
    spread = (max(values) - min(values)) / 2 / med if len(values) > 1 and med else 0.0
    bad = [r for r in a + b if r.status != "ok"]
    return NetRow(engine=engine, docker_version=version, workload=workload, path=path, against=against, metric=metric,
                  higher_is_better=higher, unit=_unit(metric), n=len(values), value=med,
                  base=statistics.median(bases) if bases else float("nan"), spread=spread,
                  interval=interval, verdict=classify(interval, precision), failed=len(bad),
                  reason=bad[0].error or bad[0].status if bad else "")


def _unit(metric: str) -> str:
    if metric.endswith("bits_per_second"):
        return "bit/s"
    if metric.endswith("_us"):
        return "µs"
    if metric == "requests_per_second":
        return "req/s"
    if metric == "tps":
        return "tps"
    return ""


def net_rows(records: list[NetRecord], precision: float = DEFAULT_PRECISION) -> list[NetRow]:
    """Every path against its host baseline, per engine, workload and metric (primary first), then
    the control and docker-proxy against DNAT."""
    rows: list[NetRow] = []
    engines = list(dict.fromkeys(r.engine for r in records))
    for engine in engines:
        mine = [r for r in records if r.engine == engine]
        version = next((r.docker_version for r in mine if r.docker_version), "")
        for workload, spec in WORKLOADS.items():
            runs = [r for r in mine if r.workload == workload]
            if not runs:
                continue
            metrics = (spec.metric, *spec.extra_metrics)
            if spec.name == "throughput":
                metrics = (spec.metric,)        # retransmits on loopback are zero, with no log

            def of(path: str, ns: str, runs: list[NetRecord] = runs) -> list[NetRecord]:
                return [r for r in runs if r.path == path and r.namespace == ns]

            for path in [p for p in PATHS if p != HOST]:
                ns = PATHS[path].namespace
                if not of(path, ns):
                    continue
                for metric in metrics:
                    rows.append(_row(engine, version, workload, path, "host", metric, of(path, ns), of(HOST, ns),
                                     precision))
            # The same paths against a host-network container in the same round: the container's own
            # costs (its cgroup's CPU scheduling, seccomp) cancel, the network path's remain.
            if of("host-network", NAT):
                for path in [p for p in PATHS if PATHS[p].server == "bridge" and PATHS[p].namespace == NAT]:
                    if of(path, NAT):
                        rows.append(_row(engine, version, workload, path, "host-network", spec.metric,
                                         of(path, NAT), of("host-network", NAT), precision))
            if of(HOST, PROXY) and of(HOST, NAT):
                rows.append(_row(engine, version, workload, CONTROL, "host@nat", spec.metric, of(HOST, PROXY),
                                 of(HOST, NAT), precision))
            if of("proxy-loopback", PROXY) and of("dnat-loopback", NAT):
                for metric in metrics:
                    rows.append(_row(engine, version, workload, PROXY_VS_DNAT, "dnat-loopback", metric,
                                     of("proxy-loopback", PROXY), of("dnat-loopback", NAT), precision))
        rows += _layer_vs_volume(engine, version, mine, precision)
    return rows


# The article's storage question over the network: the same path, the data on the container's top
# layer (pgbench) against on a volume (pgbench-volume), paired by round.
LAYER, VOLUME = "pgbench", "pgbench-volume"


def _layer_vs_volume(engine: str, version: str, mine: list[NetRecord], precision: float) -> list[NetRow]:
    out = []
    for path in [p for p in PATHS if p != HOST]:
        ns = PATHS[path].namespace
        layer = [r for r in mine if r.workload == LAYER and r.path == path and r.namespace == ns]
        volume = [r for r in mine if r.workload == VOLUME and r.path == path and r.namespace == ns]
        if layer and volume:
            out.append(_row(engine, version, LAYER, path, VOLUME, WORKLOADS[LAYER].metric, layer, volume, precision))
    return out


def primary(rows: list[NetRow]) -> list[NetRow]:
    """The rows of each workload's primary metric."""
    return [r for r in rows if r.metric == WORKLOADS[r.workload].metric]
