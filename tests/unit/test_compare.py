"""compare's arithmetic, significance and false discovery rate on constructed runs whose answer is
known, and its refusal of what cannot be compared. Each spec is a session of its own, and a row is
tested against the drift between sessions of the host baseline (or of a bind control, for ratios),
so the constructed sweeps hold several specs on one filesystem (tests/unit/test_drift.py has the
same on real sweeps)."""

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from storprof import cli
from storprof.errors import UserError
from storprof.results import ResultSet
from storprof.stats.compare import compare, summary_line, verdict, welch_p_value

RUN_IDS = itertools.count()


def result_set(cells: dict[tuple[str, str, str], list[float]], metric: str = "iops", meta: dict | None = None,
               params: dict | None = None, run_id: str | None = None) -> ResultSet:
    """A ResultSet of fio-like rows: one per repeat, the value as total_iops (or seconds for 'time');
    each call another run (its own run id), so each spec of it another session."""
    run_id = run_id or f"r{next(RUN_IDS)}"
    rows = []
    for (spec, placement, job), values in cells.items():
        for r, v in enumerate(values):
            rows.append({"driver_spec": spec, "placement": placement, "job": job, "repeat": r, "status": "ok",
                         "run_id": run_id, "kind": "fio", "primary_metric": metric,
                         "total_iops": v if metric == "iops" else None, "total_bw_bytes": None,
                         "seconds": v if metric == "time" else None, "p99_clat_ns": 1000.0,
                         "sync_lat_p99_ns": None})
    made = ResultSet(Path("."), meta or {}, [])
    made.__dict__["runs"] = pd.DataFrame(rows)       # the cached view, built directly
    return made


CELL = ("overlay2@ext4", "union", "randread-4k")
HOST = ("overlay2@ext4", "host", "randread-4k")
# Two more sessions on ext4 whose host baseline drifts by about 1% between sessions
OTHERS = {("vfs@ext4", "host", "randread-4k"): [990.0, 1000.0, 1010.0],
          ("fuse-overlayfs@ext4", "host", "randread-4k"): [1005.0, 1015.0, 995.0]}


def row(table: pd.DataFrame, metric: str, placement: str = "union", spec: str = "overlay2@ext4") -> pd.Series:
    return table[(table["metric"] == metric) & (table["placement"] == placement)
                 & (table["driver_spec"] == spec)].iloc[0]


def test_welch_is_the_textbook_formula_on_the_logs():
    a, b = [100.0, 102.0, 98.0, 101.0], [90.0, 95.0, 93.0]
    la, lb = [math.log(x) for x in a], [math.log(x) for x in b]
    va, vb = pd.Series(la).var(), pd.Series(lb).var()
    t = (sum(la) / 4 - sum(lb) / 3) / math.sqrt(va / 4 + vb / 3)
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert welch_p_value(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df))


def test_a_row_is_the_t_test_of_its_log_ratio_against_the_drift_between_sessions():
    a = result_set({HOST: [1000.0, 1030.0, 980.0], CELL: [800.0, 810.0, 790.0], **OTHERS})
    b = result_set({HOST: [1010.0, 990.0, 1025.0], CELL: [760.0, 770.0, 750.0], **OTHERS})
    logs_a = [math.log(1000.0), math.log(1000.0), math.log(1005.0)]      # the host's session medians
    logs_b = [math.log(1010.0), math.log(1000.0), math.log(1005.0)]
    ss = sum(sum((x - sum(g) / 3) ** 2 for x in g) for g in (logs_a, logs_b))
    tau2, df = ss / 4, 4
    r = row(compare(a, b).table, "iops")
    assert r["a"] == 800.0 and r["b"] == 760.0                           # the medians of the repeats
    t = math.log(760 / 800) / math.sqrt(2 * tau2)
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert r["drift_df"] == df and r["drift"] == pytest.approx(math.exp(math.sqrt(tau2)) - 1)
    assert r["verdict"] == "slower" and "between sessions (host, n=6)" in r["drift_note"]


def test_same_machine_noise_is_not_significant():
    a = result_set({CELL: [1000.0, 1030.0, 980.0], HOST: [1000.0, 1030.0, 980.0], **OTHERS})
    b = result_set({CELL: [1010.0, 990.0, 1025.0], HOST: [1010.0, 990.0, 1025.0], **OTHERS})
    assert row(compare(a, b).table, "iops")["verdict"] == "not significant"


def test_one_session_a_side_is_not_yet_known_however_steady_its_repeats():
    # the repeats of one session agree to 1% and B is 30% slower: without a second session nothing
    # says how far two sessions land apart here, so it is never called different
    a = result_set({HOST: [1000.0, 1010.0, 990.0], CELL: [1000.0, 1010.0, 990.0]})
    b = result_set({HOST: [700.0, 710.0, 690.0], CELL: [700.0, 710.0, 690.0]})
    table = compare(a, b).table
    r = row(table, "iops")
    assert r["verdict"] == "not yet known" and pd.isna(r["p_value"])
    assert r["drift_note"] == "not measured: one session per side (host)"
    assert "not yet known: their drift between sessions is not measured" in summary_line(table)


def test_a_clear_slowdown_is_significant_and_says_which_way():
    slower = {k: [v * 0.7 for v in vs] for k, vs in OTHERS.items()}
    a = result_set({CELL: [1000.0, 1010.0, 990.0], HOST: [1000.0, 1010.0, 990.0], **OTHERS})
    b = result_set({CELL: [700.0, 710.0, 690.0], HOST: [700.0, 710.0, 690.0], **slower})
    r = row(compare(a, b).table, "iops")
    assert r["verdict"] == "slower" and r["p_value"] < 0.001 and r["q_value"] < 0.05
    assert r["ratio"] == pytest.approx(0.7, rel=0.01)


def test_for_times_less_is_faster():
    job = "copyup-64m first write"
    a = result_set({(s, "host", job): [0.050, 0.052, 0.049] for s in ("vfs@ext4", "overlay2@ext4")}, metric="time")
    b = result_set({("vfs@ext4", "host", job): [0.010, 0.011, 0.010],
                    ("overlay2@ext4", "host", job): [0.011, 0.010, 0.010]}, metric="time")
    assert row(compare(a, b).table, "time", "host", "vfs@ext4")["verdict"] == "faster"


def test_a_probes_multiplier_of_host_time_is_not_yet_known_without_a_control():
    # copy-up runs on host and union only: no A/A or bind control says how far the ratio drifts
    host, union = ("vfs@ext4", "host", "copyup-64m first write"), ("vfs@ext4", "union", "copyup-64m first write")
    other = ("overlay2@ext4", "host", "copyup-64m first write")
    a = result_set({host: [0.001] * 3, union: [0.050, 0.052, 0.049], other: [0.001] * 3}, metric="time")
    b = result_set({host: [0.001] * 3, union: [0.010, 0.011, 0.010], other: [0.001] * 3}, metric="time")
    multiplier = row(compare(a, b).table, "time ratio to host", spec="vfs@ext4")
    assert multiplier["ratio"] == pytest.approx(0.2, rel=0.05) and multiplier["verdict"] == "not yet known"
    assert multiplier["drift_note"] == "not measured: no A/A or bind/volume control of this job"


def test_the_ratio_to_host_cancels_drift_between_the_sweeps():
    # B's machine is 20% slower across the board: raw values all fall, the union's cost did not
    # change; the ratio's drift between sessions is read from bind ÷ host
    specs = ("overlay2@ext4", "vfs@ext4", "fuse-overlayfs@ext4")
    def sweep(scale: float, wobble: list[float]):
        cells = {}
        for spec, w in zip(specs, wobble):
            cells[spec, "host", "randread-4k"] = [1000.0 * scale * w * f for f in (1.0, 1.01, 0.99)]
            cells[spec, "bind", "randread-4k"] = [990.0 * scale * w * f for f in (1.0, 1.01, 0.99)]
            cells[spec, "union", "randread-4k"] = [800.0 * scale * w * f for f in (1.0, 1.01, 0.99)]
        return result_set(cells)
    table = compare(sweep(1.0, [1.0, 1.01, 0.99]), sweep(0.8, [1.0, 0.99, 1.02])).table
    assert row(table, "iops")["verdict"] == "slower"
    ratio = row(table, "ratio to host")
    assert ratio["verdict"] == "not significant" and ratio["ratio"] == pytest.approx(1.0, abs=0.01)
    assert "(bind/volume, n=6)" in ratio["drift_note"]


def test_the_false_discovery_rate_spares_a_user_from_chance_rows():
    # 40 pairs of identical sweeps of 60 specs on ext4 whose sessions drift by 5% (and whose repeats
    # by 1% within a session): Welch's test on the repeats calls chance rows real in most pairs;
    # against the drift between sessions, with Benjamini-Hochberg, a discovery is made in few (its
    # promise under no change: at most 5% of the time)
    import random
    welch = discovered = 0
    cells = [(f"d{i}@ext4", "host", "j") for i in range(60)]
    for seed in range(40):
        rng = random.Random(seed)

        def sweep(rng=rng):
            out = {}
            for c in cells:
                session = 1000 * math.exp(rng.gauss(0, 0.05))
                out[c] = [session * math.exp(rng.gauss(0, 0.01)) for _ in range(3)]
            return out
        ca, cb = sweep(), sweep()
        table = compare(result_set(ca), result_set(cb)).table
        welch += int(any((p or 1) < 0.001 for p in (welch_p_value(ca[c], cb[c]) for c in cells)))
        discovered += int(table["verdict"].isin(["faster", "slower"]).any())
    assert welch >= 30 and discovered <= 4


def test_p99_latency_is_compared_too_and_larger_is_slower():
    cells = {(s, "union", "randread-4k"): [1000.0] * 3 for s in ("overlay2@ext4", "vfs@ext4")}
    cells.update({(s, "host", "randread-4k"): [1000.0] * 3 for s in ("overlay2@ext4", "vfs@ext4")})
    a, b = result_set(cells), result_set(cells)
    a.runs["p99_clat_ns"] = [1000.0, 1010.0, 990.0] * 4
    b.runs["p99_clat_ns"] = [2000.0, 2100.0, 1900.0] * 2 + [2050.0, 2010.0, 1990.0] * 2
    table = compare(a, b).table
    lat = row(table, "p99_latency_ns")
    assert lat["verdict"] == "slower" and lat["ratio"] == pytest.approx(2.0, rel=0.01)


def test_sorted_by_size_of_change_and_one_sided_rows_listed():
    other = ("vfs@ext4", "volume", "randread-4k")
    only_a = ("btrfs@btrfs", "union", "randread-4k")
    a = result_set({CELL: [1000.0, 1001.0, 999.0], other: [100.0, 101.0, 99.0], only_a: [5.0, 5.0]})
    b = result_set({CELL: [1100.0, 1101.0, 1099.0], other: [300.0, 301.0, 299.0],
                    ("zfs@zfs", "union", "randread-4k"): [1.0, 2.0]})
    table = compare(a, b).table
    iops = table[table["metric"] == "iops"]
    assert list(iops["driver_spec"])[:2] == ["vfs@ext4", "overlay2@ext4"]       # 3x before 1.1x
    verdicts = dict(zip(iops["driver_spec"], iops["verdict"]))
    assert verdicts["btrfs@btrfs"] == "only in A" and verdicts["zfs@zfs"] == "only in B"
    assert "in only one of the two" in summary_line(table)


def test_single_repeat_cannot_tell():
    assert welch_p_value([1.0], [2.0, 3.0]) is None
    assert verdict("iops", 2.0, None) == "cannot tell (too few repeats)"


def test_nothing_in_common_is_a_clear_error():
    with pytest.raises(UserError, match="no \\(driver, placement, job\\) in common"):
        compare(result_set({CELL: [1.0, 2.0]}), result_set({("vfs@ext4", "union", "x"): [1.0, 2.0]}))


def test_settings_that_differ_are_said_and_other_sizes_are_not_compared():
    from tests.unit.test_tables import SWEEP
    a, b = ResultSet.load(SWEEP), ResultSet.load(SWEEP)
    b.meta = {**b.meta, "kernel": "7.0.0", "hostname": "elsewhere"}
    assert any(d.startswith("kernel:") for d in compare(a, b).differences)
    resized = [r.__class__(**{**r.__dict__, "params": {**r.params, "size": "64m"}}) if hasattr(r, "params")
               and r.kind == "fio" else r for r in b.records]
    c = ResultSet(b.dir, b.meta, resized)
    with pytest.raises(UserError, match="measured with size 128m against 64m"):
        compare(a, c)


def test_compare_command_on_two_results_directories(tmp_path):
    from tests.unit.test_tables import SWEEP
    result = CliRunner().invoke(cli.main, ["compare", str(SWEEP), str(SWEEP), "--all"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "0 of" in result.output and "not significant" in result.output     # a sweep against itself
    assert "ratio to host" in result.output and "q (FDR)" in result.output
    bad = CliRunner().invoke(cli.main, ["compare", str(tmp_path), str(SWEEP)])
    assert bad.exit_code == 2 and "not a storprof results directory" in bad.stderr


def test_compare_command_takes_more_sweeps_for_the_drift():
    from tests.unit.test_tables import SWEEP
    result = CliRunner().invoke(cli.main, ["compare", str(SWEEP), str(SWEEP), "--all", "--drift", str(SWEEP)],
                                catch_exceptions=False)
    # the same sessions again add nothing: a session counts once (tests/unit/test_drift.py adds others)
    assert result.exit_code == 0 and "between sessions (host, n=3)" in result.output
    bad = CliRunner().invoke(cli.main, ["compare", str(SWEEP), str(SWEEP), "--drift", "/nonexistent"])
    assert bad.exit_code == 2 and "not a storprof results directory" in bad.stderr
