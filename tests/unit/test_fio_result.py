"""fio JSON parsing, checked against real fio 3.33 output captured on this machine."""

import json
from pathlib import Path

import pytest

from storprof.errors import FioError
from storprof.storage.fio.result import (
    DirectionStats,
    FioResult,
    extract_json,
    parse_fio_output,
    result_from_json,
    text_around_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fio"

# Which directions each built-in job does I/O in.
DIRECTIONS = {
    "randread-4k": {"read"},
    "seqread-1m": {"read"},
    "randwrite-4k": {"write"},
    "seqwrite-1m": {"write"},
    "randrw-4k-70-30": {"read", "write"},
    "fsync-write-4k": {"write"},
    "randread-4k-numjobs2": {"read"},
    # metadata engines: fio counts one create as a write, one unlink as a read
    "meta-create": {"write"},
    "meta-delete": {"read"},
}
PCT = {"p50": "50.000000", "p99": "99.000000", "p999": "99.900000"}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def expected_direction(raw_jobs: list[dict], direction: str) -> dict:
    """What the parser should report, computed straight from fio's raw JSON."""
    entries = [job[direction] for job in raw_jobs]
    with_io = [e for e in entries if e["total_ios"]]
    out = {
        "iops": sum(e["iops"] for e in entries),
        "bw_bytes": sum(e["bw_bytes"] for e in entries),
        "io_bytes": sum(e["io_bytes"] for e in entries),
        "total_ios": sum(e["total_ios"] for e in entries),
        "runtime_ms": max(e["runtime"] for e in entries),
    }
    for short, key in PCT.items():
        out[short] = max(e["clat_ns"]["percentile"][key] for e in with_io) if with_io else None
    return out


def test_fixtures_are_small_real_fio_output():
    files = sorted(FIXTURES.iterdir())
    assert len(files) >= 10
    for path in files:
        assert path.stat().st_size < 200_000, path
    for name in DIRECTIONS:
        assert json.loads(fixture(f"{name}.json"))["fio version"] == "fio-3.33"


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_every_fixture_parses_to_the_raw_numbers(name):
    text = fixture(f"{name}.json")
    raw = json.loads(text)
    result = parse_fio_output(text)

    assert result.job_name == raw["jobs"][0]["jobname"]
    assert result.fio_version == "fio-3.33"
    assert result.error == 0
    assert result.warnings == ()
    for direction in ("read", "write"):
        stats: DirectionStats = getattr(result, direction)
        want = expected_direction(raw["jobs"], direction)
        assert stats.iops == pytest.approx(want["iops"])
        assert stats.bw_bytes == want["bw_bytes"]
        assert stats.io_bytes == want["io_bytes"]
        assert stats.total_ios == want["total_ios"]
        assert stats.runtime_ms == want["runtime_ms"]
        assert (stats.clat_p50_ns, stats.clat_p99_ns, stats.clat_p999_ns) == (want["p50"], want["p99"], want["p999"])
        if direction in DIRECTIONS[name]:
            assert stats.iops > 0 and stats.bw_bytes > 0 and stats.io_bytes > 0
            assert 0 < stats.clat_p50_ns <= stats.clat_p99_ns <= stats.clat_p999_ns
        else:
            assert stats.iops == 0 and stats.bw_bytes == 0
            assert stats.clat_p50_ns is stats.clat_p99_ns is stats.clat_p999_ns is None


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_metrics_are_flat_and_consistent(name):
    text = fixture(f"{name}.json")
    raw = json.loads(text)
    metrics = parse_fio_output(text).metrics()
    assert set(metrics) == {
        *(f"{d}_{m}" for d in ("read", "write")
          for m in ("iops", "bw_bytes", "clat_p50_ns", "clat_p99_ns", "clat_p999_ns")),
        "total_iops", "total_bw_bytes", "p99_clat_ns", "sync_lat_p50_ns", "sync_lat_p99_ns", "sync_lat_p999_ns",
        "runtime_ms",
    }
    assert metrics["runtime_ms"] == max(job[d]["runtime"] for job in raw["jobs"] for d in ("read", "write"))
    read, write = expected_direction(raw["jobs"], "read"), expected_direction(raw["jobs"], "write")
    assert metrics["read_iops"] == pytest.approx(read["iops"])
    assert metrics["write_bw_bytes"] == write["bw_bytes"]
    assert metrics["total_iops"] == pytest.approx(read["iops"] + write["iops"])
    assert metrics["total_bw_bytes"] == read["bw_bytes"] + write["bw_bytes"]
    p99s = [d["p99"] for d in (read, write) if d["p99"] is not None]
    assert metrics["p99_clat_ns"] == max(p99s)
    assert all(v is None or isinstance(v, float) for v in metrics.values())


def test_mixed_job_p99_is_the_worse_direction():
    raw = json.loads(fixture("randrw-4k-70-30.json"))["jobs"][0]
    metrics = parse_fio_output(fixture("randrw-4k-70-30.json")).metrics()
    read_p99 = raw["read"]["clat_ns"]["percentile"]["99.000000"]
    write_p99 = raw["write"]["clat_ns"]["percentile"]["99.000000"]
    assert metrics["p99_clat_ns"] == max(read_p99, write_p99)
    # rwmixread=70: reads should be roughly 70% of the I/Os fio did.
    assert 0.6 < metrics["read_iops"] / metrics["total_iops"] < 0.8


def test_fsync_latency_comes_from_the_sync_block():
    text = fixture("fsync-write-4k.json")
    sync_raw = json.loads(text)["jobs"][0]["sync"]
    result = parse_fio_output(text)
    assert result.sync is not None
    assert result.sync.total_ios == sync_raw["total_ios"] > 0
    assert result.sync.clat_p50_ns == sync_raw["lat_ns"]["percentile"]["50.000000"]
    assert result.sync.clat_p99_ns == sync_raw["lat_ns"]["percentile"]["99.000000"]
    assert result.sync.clat_p999_ns == sync_raw["lat_ns"]["percentile"]["99.900000"]
    assert result.sync.clat_p50_ns <= result.sync.clat_p99_ns <= result.sync.clat_p999_ns
    metrics = result.metrics()
    assert metrics["sync_lat_p99_ns"] == sync_raw["lat_ns"]["percentile"]["99.000000"]


@pytest.mark.parametrize("name", ["randread-4k", "seqwrite-1m", "randrw-4k-70-30"])
def test_jobs_without_fsync_have_no_sync_stats(name):
    result = parse_fio_output(fixture(f"{name}.json"))
    assert result.sync is None
    assert result.metrics()["sync_lat_p99_ns"] is None


def test_several_job_entries_are_summed():
    text = fixture("randread-4k-numjobs2.json")
    jobs = json.loads(text)["jobs"]
    assert len(jobs) == 2
    result = parse_fio_output(text)
    assert result.read.iops == pytest.approx(jobs[0]["read"]["iops"] + jobs[1]["read"]["iops"])
    assert result.read.bw_bytes == jobs[0]["read"]["bw_bytes"] + jobs[1]["read"]["bw_bytes"]
    assert result.read.clat_p99_ns == max(j["read"]["clat_ns"]["percentile"]["99.000000"] for j in jobs)


# --- text around the JSON --------------------------------------------------------------------------

def test_warning_before_json_is_tolerated_and_kept():
    stdout = fixture("warning-before-json.stdout")
    assert stdout.startswith("note: both iodepth >= 1 and synchronous I/O engine")
    result = parse_fio_output(stdout, fixture("warning-before-json.stderr"))
    raw = json.loads(stdout[stdout.index("{"):])
    assert result.read.iops == pytest.approx(raw["jobs"][0]["read"]["iops"]) and result.read.iops > 0
    assert result.warnings == (
        "note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1",)


def test_extract_json_skips_text_before_and_after():
    text = fixture("randread-4k.json")
    wrapped = "fio: some warning\nanother line {not json}\n" + text + "fio: trailing note\n"
    assert extract_json(wrapped) == json.loads(text)
    assert text_around_json(wrapped) == ["fio: some warning", "another line {not json}", "fio: trailing note"]


def test_extract_json_does_not_take_an_inner_object_of_truncated_output():
    truncated = fixture("randread-4k.json")[:3000]
    with pytest.raises(FioError):
        extract_json(truncated)


@pytest.mark.parametrize("text", ["", "fio: something went wrong\n", "[1, 2]\n"])
def test_extract_json_without_an_object_raises_with_the_text(text):
    with pytest.raises(FioError) as err:
        extract_json(text)
    if text.strip():
        assert text.strip() in str(err.value)


# --- failures --------------------------------------------------------------------------------------

def test_parse_time_failure_carries_fios_message():
    stdout, stderr = fixture("missing-directory.stdout"), fixture("missing-directory.stderr")
    assert fixture("missing-directory.rc").strip() == "1"
    assert stdout == ""
    with pytest.raises(FioError) as err:
        parse_fio_output(stdout, stderr)
    message = str(err.value)
    assert "does-not-exist is not a directory" in message
    assert "failed parsing directory=" in message
    assert "\n" not in message


def test_io_error_in_json_carries_fios_message():
    stdout, stderr = fixture("unaligned-direct-io.stdout"), fixture("unaligned-direct-io.stderr")
    assert fixture("unaligned-direct-io.rc").strip() == "1"
    raw = extract_json(stdout)
    assert raw["jobs"][0]["error"] == 22
    with pytest.raises(FioError) as err:
        parse_fio_output(stdout, stderr)
    message = str(err.value)
    assert "error 22 (Invalid argument)" in message
    assert "err=22" in message and "io_u error" in message
    assert "\n" not in message


def test_result_from_json_reports_the_error_without_raising():
    result = result_from_json(extract_json(fixture("unaligned-direct-io.stdout")))
    assert isinstance(result, FioResult)
    assert result.error == 22
    assert result.job_name == "unaligned-direct-io"


def test_json_without_jobs_is_an_error():
    with pytest.raises(FioError, match="no jobs"):
        parse_fio_output('{"fio version": "fio-3.33", "jobs": []}')
