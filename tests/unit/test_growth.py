import math

import pytest

from storprof.errors import UserError
from storprof.results.records import LayerRecord, RunContext
from storprof.stats.growth import fit_line, percentile
from storprof.storage.layers import LayerPlan, growth, summarize_layers


def test_percentile_matches_linear_interpolation():
    xs = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


def test_fit_recovers_a_known_line_and_its_quality():
    xs = [0, 1, 2, 3, 4]
    fit = fit_line(xs, [10 + 2.5 * x for x in xs])
    assert fit.slope == pytest.approx(2.5) and fit.intercept == pytest.approx(10) and fit.r2 == pytest.approx(1)
    noisy = fit_line(xs, [10, 13, 14, 18, 20])
    assert 0.9 < noisy.r2 < 1 and noisy.slope == pytest.approx(2.5)
    flat = fit_line(xs, [5, 6, 5, 6, 5])
    assert abs(flat.slope) < 0.2 and flat.r2 < 0.2
    assert fit_line([1, 1, 1], [1, 2, 3]) is None


def _rec(spec, op, seconds, **kw):
    driver, fs = spec.split("@")
    context = RunContext(run_id="r1", driver_spec=spec, driver=driver, fs=fs)
    return LayerRecord(context=context, op=op, seconds=seconds, **kw)


def test_growth_says_which_driver_is_flat_and_which_grows():
    recs = []
    for mib in (80, 208, 336):
        for s in range(3):
            recs.append(_rec("vfs@ext4", "container create", 0.1 + mib / 100 * 0.2 + s * 0.001, image_mib=mib))
            recs.append(_rec("overlay2@ext4", "container create", 0.05 + s * 0.001, image_mib=mib))
    slopes = {r["driver_spec"]: r for r in growth(recs) if r["unit"] == "ms per 100 MiB of image"}
    assert slopes["vfs@ext4"]["slope"] == pytest.approx(200, rel=0.01)
    assert abs(slopes["overlay2@ext4"]["slope"]) < 1


def test_growth_is_not_fitted_on_two_sizes():
    """Any two points make a perfect line: R² would say nothing."""
    recs = [_rec("vfs@ext4", "container create", 0.1 + mib / 1000, image_mib=mib)
            for mib in (80, 336) for _ in range(3)]
    assert growth(recs) == []
    recs += [_rec("vfs@ext4", "container create", 0.3, image_mib=208)]
    assert [r["n"] for r in growth(recs)] == [7]


def test_summary_percentiles_and_host_ratio():
    recs = [_rec("overlay2@ext4", "commit", t, layer_mib=16, bytes_added=16 * 2**20) for t in (0.2, 0.4, 0.3)]
    recs += [_rec("overlay2@ext4", "host copy", 0.1, layer_mib=16)]
    rows = {(r["op"], r["variant"]): r for r in summarize_layers(recs)}
    commit = rows[("commit", "16 MiB")]
    assert commit["p50_ms"] == pytest.approx(300) and commit["n"] == 3
    assert commit["host_ratio"] == pytest.approx(3.0)
    assert commit["bytes"] == 16 * 2**20


def test_plan_validation():
    with pytest.raises(UserError, match="at most 120 layers"):
        LayerPlan(depths=(1, 200)).validate("overlay2")
    LayerPlan(depths=(1, 200)).validate("vfs")
    with pytest.raises(UserError, match="positive"):
        LayerPlan(depths=(0,)).validate("vfs")
    with pytest.raises(UserError):
        LayerPlan(layer_sizes_mib=(-1,)).validate("vfs")


def test_a_measured_zero_bytes_is_kept():
    recs = [_rec("overlay2@ext4", "commit", 0.05, layer_mib=0, bytes_added=0) for _ in range(2)]
    (row,) = summarize_layers(recs)
    assert row["bytes"] == 0
