"""Statistics on repeated measurements: pure functions, no formatting.

Ratios of paired runs are summarised on the log scale: the log of a ratio is symmetric (0.5x and
2x are equally far from 1), products of run-to-run factors become sums, and the back-transformed
mean is the geometric mean of the ratios. The interval is Student's t on the log-ratios, which
with the usual 3 to 10 pairs is honest where a bootstrap (which needs tens of samples to
resample from) is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _scipy_stats


@dataclass(frozen=True)
class RatioInterval:
    """A ratio's point estimate (geometric mean of the paired ratios) and its confidence interval."""

    ratio: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def half_width(self) -> float:
        """Relative half-width of the interval (on the log scale): 0.05 means about ±5%."""
        return (math.log(self.high) - math.log(self.low)) / 2 if self.n > 1 else math.inf

    def excludes_one(self) -> bool:
        return self.n > 1 and (self.low > 1 or self.high < 1)


def ratio_interval(ratios: list[float], confidence: float = 0.95) -> RatioInterval | None:
    """t-interval of the mean log-ratio, back-transformed; None without a positive ratio.
    One ratio gives an interval from 0 to infinity: nothing is known of its spread."""
    logs = [math.log(r) for r in ratios if r is not None and r > 0 and math.isfinite(r)]
    n = len(logs)
    if n == 0:
        return None
    mean = sum(logs) / n
    if n == 1:
        return RatioInterval(math.exp(mean), 0.0, math.inf, 1, confidence)
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    t = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
    half = t * sd / math.sqrt(n)
    return RatioInterval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n, confidence)


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    """a[i] / b[i] for every pair with a positive b."""
    return [x / y for x, y in zip(a, b) if y]
