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


# The relative half-width of a ratio's 95% interval that counts as precise enough to call a cell
# 'no measurable difference' (--precision), for storage and network alike.
DEFAULT_PRECISION = 0.05

# What a cell's interval says, against a precision target P (a relative half-width, e.g. 0.05).
REAL = "real difference"             # the interval excludes 1.00
SAME = "no measurable difference"    # the interval lies within 1.00 ± P
UNKNOWN = "not yet known"            # neither: more repeats could tell


def classify(interval: RatioInterval | None, precision: float) -> str:
    if interval is None or interval.n < 2:
        return UNKNOWN
    if interval.excludes_one():
        return REAL
    if 1 - precision <= interval.low and interval.high <= 1 + precision:
        return SAME
    return UNKNOWN


def repeats_needed(sd_log: float, precision: float, confidence: float = 0.95, most: int = 1000) -> int:
    """The fewest paired repeats whose t-interval of the mean log-ratio is within ±precision,
    for log-ratios that vary with standard deviation sd_log."""
    for n in range(2, most + 1):
        t = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
        if t * sd_log / math.sqrt(n) <= math.log(1 + precision):
            return n
    return most


def detectable(sd_log: float, n: int, confidence: float = 0.95) -> float:
    """The smallest relative difference n paired repeats can call real when log-ratios vary by
    sd_log: the interval's half-width, as a fraction (0.05 is ±5%)."""
    if n < 2 or not math.isfinite(sd_log):
        return math.inf
    t = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
    return math.exp(t * sd_log / math.sqrt(n)) - 1


def pooled_sd_log(groups: list[list[float]]) -> tuple[float, int]:
    """The pooled standard deviation of log-ratios over several cells (each a list of paired
    ratios), and its degrees of freedom: how much a ratio varies on this machine when nothing
    changes, if the cells are controls."""
    ss, df = 0.0, 0
    for ratios in groups:
        logs = [math.log(r) for r in ratios if r and r > 0]
        if len(logs) < 2:
            continue
        mean = sum(logs) / len(logs)
        ss += sum((x - mean) ** 2 for x in logs)
        df += len(logs) - 1
    return (math.sqrt(ss / df) if df else math.nan), df


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order; a row is a discovery
    at false discovery rate α when its q-value is below α. None stays None."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    out: list[float | None] = [None] * len(p_values)
    smallest = 1.0
    for rank in range(m, 0, -1):
        p, i = indexed[rank - 1]
        smallest = min(smallest, p * m / rank)
        out[i] = smallest
    return out


def welch_log_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test on the logs of two samples (ratios or rates: a change by a
    factor is symmetric on the log scale); None when there is too little to test."""
    la = [math.log(x) for x in a if x and x > 0]
    lb = [math.log(x) for x in b if x and x > 0]
    if len(la) < 2 or len(lb) < 2:
        return None
    if max(la) == min(la) and max(lb) == min(lb):
        return None
    p = float(_scipy_stats.ttest_ind(la, lb, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def between(a: RatioInterval, b: RatioInterval, comparisons: int = 1) -> RatioInterval | None:
    """a ÷ b, for two cells measured in different sessions (two specs' ratios to their own host),
    from their t-intervals alone: each interval's log-scale standard error recovered from its n,
    Welch–Satterthwaite degrees of freedom, and the confidence raised (Bonferroni) for having
    picked the pair among `comparisons`, as the best and the worst of several specs are."""
    if a.n < 2 or b.n < 2 or not (a.low > 0 and b.low > 0) or math.isinf(a.high) or math.isinf(b.high):
        return None
    se = [math.log(i.high / i.low) / (2 * float(_scipy_stats.t.ppf(0.5 + i.confidence / 2, i.n - 1))) for i in (a, b)]
    var = se[0] ** 2 + se[1] ** 2
    if var == 0:
        return None
    df = var ** 2 / (se[0] ** 4 / (a.n - 1) + se[1] ** 4 / (b.n - 1))
    confidence = 1 - (1 - min(a.confidence, b.confidence)) / max(1, comparisons)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(var)
    mean = math.log(a.ratio / b.ratio)
    return RatioInterval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), min(a.n, b.n), confidence)
