"""The statistics the views of one results directory show, computed once: the files beside the
results and the terminal read the same summary instead of each summarizing again."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.network import NetRow, net_rows
from storprof.stats.summary import DEFAULT_PRECISION, layer_tables, summarize


@dataclass(frozen=True)
class ResultSummary:
    """summarize's overhead rows (the runs themselves when there are none), the layer tables and
    the network rows, at the precision the sweep aimed at."""

    precision: float
    over: pd.DataFrame
    ops: pd.DataFrame
    slopes: pd.DataFrame
    net: list[NetRow]

    @classmethod
    def of(cls, result_set: ResultSet) -> ResultSummary:
        runs = result_set.runs
        precision = float(result_set.meta.get("precision") or DEFAULT_PRECISION)
        ops, slopes = layer_tables(result_set.layers)
        net = net_rows(result_set.of(NetRecord), precision) if result_set.of(NetRecord) else []
        return cls(precision, summarize(runs, precision) if not runs.empty else runs, ops, slopes, net)
