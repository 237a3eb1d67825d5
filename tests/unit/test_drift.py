"""compare against the drift between sessions (stats/drift.py), on real sweeps: a sweep against itself
and A/A pairs of real sessions are not called different, a slowdown of every record is, and a
backing filesystem with one session a side is "not yet known"."""

import itertools
import math

import pandas as pd
import pytest
from scipy import stats

from storprof.results import ResultSet
from storprof.stats.compare import compare, measurements, welch_p_value
from storprof.stats.drift import backing_of, drift_of, session_logs
from storprof.stats.intervals import benjamini_hochberg
from tests.conftest import FIXTURES

QUICK = FIXTURES / "results-quick"      # one real quick sweep: 5 specs, 3 of them on ext4
PAIN = FIXTURES / "results-pain"        # the union probes on 8 specs, 7 of them on ext4
CALLED = ("faster", "slower")


def with_runs(source: ResultSet, runs: pd.DataFrame) -> ResultSet:
    made = ResultSet(source.dir, source.meta, source.records)
    made.__dict__["runs"] = runs          # the cached view, built directly
    return made


def test_a_backing_filesystem_is_read_from_the_spec():
    assert backing_of("overlay2@ext4") == "ext4"
    assert backing_of("c8d-overlayfs@ext4:28.5.2+metacopy+redirect_dir") == "ext4"
    assert backing_of("vfs") is None


def test_the_drift_is_the_pooled_variance_between_sessions_of_the_host_baseline():
    sweep = ResultSet.load(QUICK)
    logs = session_logs(measurements(sweep.runs), "A")
    drift = drift_of(logs)["raw", "randread-4k", "iops", "ext4"]
    host = sweep.runs[(sweep.runs.placement == "host") & (sweep.runs.job == "randread-4k")
                      & (sweep.runs.fs == "ext4")]
    medians = [math.log(v) for v in host.groupby("driver_spec")["total_iops"].median()]
    mean = sum(medians) / 3
    assert drift.df == 2 and drift.sessions == 3 and drift.source == "host"
    assert drift.var_log == pytest.approx(sum((m - mean) ** 2 for m in medians) / 2)
    assert not drift_of(logs)["raw", "randread-4k", "iops", "xfs"].known      # one session of xfs
    d = 0.1
    assert drift.p_value(d) == pytest.approx(2 * stats.t.sf(d / math.sqrt(2 * drift.var_log), 2))


def test_a_sweep_against_itself_differs_in_nothing_and_one_session_a_side_is_not_yet_known():
    sweep = ResultSet.load(QUICK)
    table = compare(sweep, sweep).table
    assert not table["verdict"].isin(CALLED).any()
    ext4 = table[table["driver_spec"].str.contains("@ext4")]
    assert (ext4["verdict"] == "not significant").all()
    assert ext4["drift_note"].str.contains("between sessions").all()
    # overlay2@xfs and btrfs@btrfs are the only sessions on their filesystem: their drift is unknown
    alone = table[table["driver_spec"].isin(["overlay2@xfs", "btrfs@btrfs"])]
    assert (alone["verdict"] == "not yet known").all() and alone["p_value"].isna().all()
    assert alone["drift_note"].str.startswith("not measured: one session per side").all()


def test_a_real_slowdown_of_every_record_is_found_where_the_drift_is_smaller_than_it():
    # A synthetic transformation of real data: every fio run of B delivered half its IOPS and
    # bytes/s (latencies untouched). Raw rows on ext4 must be called slower where the drift between
    # sessions is well below 2x; ratios to host did not change and must not be called.
    a = ResultSet.load(QUICK)
    runs = a.runs.copy()
    for column in ("total_iops", "total_bw_bytes"):
        runs[column] = runs[column] * 0.5
    table = compare(a, with_runs(a, runs)).table
    raw = table[table["metric"].isin(["iops", "bw"]) & table["driver_spec"].str.contains("@ext4")]
    assert (raw["ratio"].round(6) == 0.5).all()
    # B is the same sessions transformed, so the drift is A's alone: 3 ext4 sessions, 2 df. Against
    # randread's ±3.1% and fsync's ±0.2% a halving is found; against seqwrite's ±8.2% it is not
    # (p 0.025, q 0.11): what three sessions can tell, and --drift sweeps would tell more.
    steady = raw[raw["drift"] < 0.05]
    assert len(steady) == 24 and (steady["verdict"] == "slower").all(), steady.to_string()
    assert (raw["drift_df"] == 2).all()
    assert not table[table["metric"] == "ratio to host"]["verdict"].isin(CALLED).any()
    assert not table[table["metric"] == "p99_latency_ns"]["verdict"].isin(CALLED).any()


def aa_side(source: ResultSet, specs: list[str], side: str) -> ResultSet:
    """The host baselines of some of a real sweep's sessions, named session-0@ext4, ...: the same
    configuration (a host directory on ext4) measured in other sessions minutes apart (the run id
    tagged with the side, so that each stays a session of its own)."""
    runs = source.runs
    host = runs[(runs["placement"] == "host") & runs["driver_spec"].isin(specs)].copy()
    host["driver_spec"] = host["driver_spec"].map({s: f"session-{i}@ext4" for i, s in enumerate(specs)})
    host["run_id"] = host["run_id"] + "-" + side
    return with_runs(source, host)


def test_real_aa_pairs_of_sessions_are_not_called_different():
    # The check on real data: 35 A/A pairs, each three real ext4 sessions of the union
    # probes' host baseline (every choice of three) against three others of the same sweep. At most
    # one row may be called different in any pair; none is. The repeats taken as the samples
    # (Welch's test, Benjamini-Hochberg at 5%, the rule before) call more than one in 6 of the 35.
    source = ResultSet.load(PAIN)
    ext4 = [s for s in source.runs["driver_spec"].unique() if backing_of(s) == "ext4"]
    assert len(ext4) == 7
    worst, welch_worse, pairs = 0, 0, 0
    for a_specs in itertools.combinations(ext4, 3):
        b_specs = [s for s in ext4 if s not in a_specs][:3]
        a, b = aa_side(source, list(a_specs), "a"), aa_side(source, b_specs, "b")
        table = compare(a, b).table
        assert table["p_value"].notna().sum() >= 20
        worst = max(worst, int(table["verdict"].isin(CALLED).sum()))
        ma, mb = measurements(a.runs), measurements(b.runs)
        welch = [welch_p_value(g["value"].tolist(), mb[(mb.driver_spec == k[0]) & (mb.job == k[1])
                                                      & (mb.metric == k[2])]["value"].tolist())
                 for k, g in ma.groupby(["driver_spec", "job", "metric"])]
        welch_worse += sum(q is not None and q < 0.05 for q in benjamini_hochberg(welch)) > 1
        pairs += 1
    assert pairs == 35 and worst <= 1
    assert welch_worse == 6


def test_a_drift_sweep_adds_its_sessions_and_a_session_counts_once():
    # real sessions: A and B two ext4 sessions each of the union probes' host baseline, --drift
    # three others of the same sweep
    source = ResultSet.load(PAIN)
    ext4 = [s for s in source.runs["driver_spec"].unique() if backing_of(s) == "ext4"]
    a, b, more = aa_side(source, ext4[:2], "a"), aa_side(source, ext4[2:4], "b"), aa_side(source, ext4[4:], "c")
    def chown(table):
        return table[(table.driver_spec == "session-0@ext4") & (table.job == "chown a 64 MiB file")
                     & (table.metric == "time")].iloc[0]
    assert chown(compare(a, b).table)["drift_df"] == 2
    calibrated = chown(compare(a, b, drift=[more]).table)
    assert calibrated["drift_df"] == 4 and "n=7" in calibrated["drift_note"]
    assert chown(compare(a, b, drift=[a, b]).table)["drift_df"] == 2      # the same sessions again add nothing
    assert chown(compare(a, a).table)["drift_df"] == 1
