"""The article's experiment in storprof net's numbers and words, from a real run
(tests/fixtures/net-pgbench: pgbench over host networking, docker-proxy, DNAT and the
bridge, data on the top layer and on a volume, 5 rounds of 3 s)."""

from __future__ import annotations

from pathlib import Path

from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.intervals import ratio_interval
from storprof.stats.network import LAYER, VOLUME, net_rows
from storprof.views.network import verdict_lines

RUN = Path(__file__).parent.parent / "fixtures" / "net-pgbench"


def _records() -> list[NetRecord]:
    return ResultSet.load(RUN).of(NetRecord)


def test_layer_against_volume_pairs_each_paths_two_servers_round_by_round():
    records = _records()
    rows = [r for r in net_rows(records) if r.against == VOLUME]
    assert {r.path for r in rows} == {"host-network", "proxy-loopback", "dnat-loopback", "bridge"}
    for row in rows:
        layer = {r.repeat: r.metrics["tps"] for r in records
                 if r.workload == LAYER and r.path == row.path and r.status == "ok"}
        volume = {r.repeat: r.metrics["tps"] for r in records
                  if r.workload == VOLUME and r.path == row.path and r.status == "ok"}
        expected = ratio_interval([layer[k] / volume[k] for k in sorted(layer.keys() & volume.keys())])
        assert row.interval == expected and row.higher_is_better and row.unit == "tps"


def test_the_article_line_gives_each_paths_tps_ratio_and_the_datas_place():
    lines = verdict_lines(net_rows(_records()))
    article = next(line for line in lines if "The article's experiment" in line)
    rows = {(r.workload, r.path, r.against): r for r in net_rows(_records()) if r.metric == "tps"}
    proxy = rows[("pgbench", "proxy-loopback", "host")]
    assert proxy.interval is not None
    assert f"proxy-loopback {proxy.interval.ratio:.2f}x [{proxy.interval.low:.2f}–{proxy.interval.high:.2f}]" in article
    assert "A new connection per transaction:" in article and "Data on the top layer ÷ on a volume" in article
    # the host-network line stays one per workload: the layer-vs-volume row is not another one
    host_network = [line for line in lines if line.startswith("[") and "--network host against the host, pgbench:"
                    in line]
    assert len(host_network) == 1
