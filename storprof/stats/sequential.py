"""When a ratio cell has its answer, and where one more round is most likely to give one.

A cell is one placement's paired log-ratios to host: n, mean and sd on the log scale. It is
answered when its interval excludes 1.00 (real) or its 95% half-width is within the precision
target (precise). Looking after every round and stopping the moment the plain 95% interval
excludes 1.00 is optional stopping: over 28 looks an A/A cell would be called real far more often
than 5% of the time. So the early stop for "real" uses a stricter t-interval, the stop's alpha
split over the looks the cell can get (Bonferroni); the stop for "precise" depends on the spread
only and needs no correction. The interval users see stays the plain 95% one (intervals.py);
the simulation in stats/simulation.py checks that A/A coverage of it stays near 95%.

Every function takes numpy arrays (any shape, broadcast), so the scheduler asks about one
session's cells and the simulation about thousands of sessions at once with the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import special
from scipy import stats as _scipy_stats

UNANSWERED, REAL, PRECISE = 0, 1, 2

# The alpha of the early stop for "excludes 1.00", over all the looks a cell gets. Small, because
# every early false call adds to the 5% the final interval already misses (simulation.py).
STOP_ALPHA = 0.02

# The horizons (rounds ahead) a group's rate of answers is judged over: one round first, and a few
# longer ones, so a cell that needs five rounds is not starved by one that never gets there.
HORIZONS = (1, 2, 3, 5, 8, 13, 21)

# Give a cell up only when even a spread this optimistic (its one-sided 80% lower bound) could not
# answer it in time: an sd from three pairs is itself uncertain by a factor of two.
OPTIMISTIC_QUANTILE = 0.80

# No "precise" stop before this many pairs: an sd from 3 or 4 pairs is small by chance often
# enough that stopping on it leaves the final interval too narrow (A/A coverage 92% at 3, 94-95%
# from 6 in the simulation).
PRECISE_FROM = 6

MOST = 1000          # the n the critical-value tables reach


RULE_SUMMARY = (f"real: the {1 - STOP_ALPHA:.0%} t-interval split over the looks excludes 1.00; "
                f"precise: the 95% half-width within the target from {PRECISE_FROM} pairs")


@dataclass(frozen=True)
class Rule:
    """The stopping rule: the precision target, the repeats a cell may get, the early stop's alpha
    spread over its looks (looks=1 with alpha 0.05 is the naive rule: stop on the plain interval)."""

    target: float = 0.05
    max_repeats: int = 30
    min_repeats: int = 3
    alpha: float = STOP_ALPHA
    looks: int | None = None     # None: one look per repeat from min_repeats to max_repeats
    precise_from: int = PRECISE_FROM

    @property
    def log_target(self) -> float:
        return math.log1p(self.target)

    @property
    def looks_used(self) -> int:
        return self.looks if self.looks is not None else max(1, self.max_repeats - self.min_repeats + 1)


def as_users_see(rule: Rule) -> Rule:
    """The plain reading of a cell, without the stopping rule's caution: answered when its 95%
    interval excludes 1.00 or is within the target, as the tables read it."""
    return replace(rule, alpha=0.05, looks=1, precise_from=2)


@lru_cache(maxsize=64)
def _t_table(two_sided_alpha: float) -> np.ndarray:
    """t critical values by n (index n, df n-1); inf for n < 2."""
    table = np.full(MOST + 2, np.inf)
    df = np.arange(1, MOST + 1)
    table[2:] = _scipy_stats.t.ppf(1 - two_sided_alpha / 2, df)
    return table


@lru_cache(maxsize=1)
def _optimistic_table() -> np.ndarray:
    """By n: the factor from an sd estimate to its one-sided OPTIMISTIC_QUANTILE lower bound."""
    df = np.maximum(np.arange(MOST + 2) - 1, 1)
    return np.sqrt(df / _scipy_stats.chi2.ppf(OPTIMISTIC_QUANTILE, df))


def _at(table: np.ndarray, n) -> np.ndarray:
    return table[np.clip(np.asarray(n, dtype=int), 0, MOST + 1)]


def plain_t(n) -> np.ndarray:
    """The 95% t critical value at n pairs: the interval users see."""
    return _at(_t_table(0.05), n)


def stop_t(rule: Rule, n) -> np.ndarray:
    """The stricter critical value the early stop for "excludes 1.00" uses at n pairs."""
    return _at(_t_table(rule.alpha / rule.looks_used), n)


def _safe_sd(sd) -> np.ndarray:
    return np.maximum(np.asarray(sd, dtype=float), 1e-9)


def answers(rule: Rule, n, mean, sd) -> np.ndarray:
    """Per cell: UNANSWERED, REAL (the stricter interval excludes 1.00) or PRECISE (the 95%
    half-width within the target)."""
    n, mean, sd = np.asarray(n), np.asarray(mean, dtype=float), _safe_sd(sd)
    root = np.sqrt(np.maximum(n, 1))
    precise = (plain_t(n) * sd / root <= rule.log_target) & (n >= rule.precise_from)
    real = np.abs(mean) > stop_t(rule, n) * sd / root
    out = np.where(real, REAL, np.where(precise, PRECISE, UNANSWERED))
    return np.where(n >= 2, out, UNANSWERED)


def p_answered(rule: Rule, n, mean, sd, h) -> np.ndarray:
    """The chance that h more pairs answer a cell, from its mean, sd and n (a plug-in proxy).

    Real: the mean after h pairs is predicted as m + s·sqrt(h/(n(n+h)))·T(n-1) (the next pairs'
    noise and the uncertainty of the mean itself), against the stricter boundary at n+h.
    Precise: (n+h-1)·s'² ≈ s²·((n-1) + χ²(h)), against the half-width the target allows at n+h.
    Mean and spread of normal data are independent, so the two chances combine as such."""
    n, mean, sd, h = np.asarray(n), np.asarray(mean, dtype=float), _safe_sd(sd), np.asarray(h)
    big = n + h
    tau = sd * np.sqrt(h / (np.maximum(n, 1) * big))
    bound = stop_t(rule, big) * sd / np.sqrt(big)
    df = np.maximum(n - 1, 1).astype(float)
    p_real = special.stdtr(df, (mean - bound) / tau) + special.stdtr(df, (-bound - mean) / tau)
    allowed = rule.log_target * np.sqrt(big) / plain_t(big)
    chi = (big - 1) * (allowed / sd) ** 2 - (n - 1)
    p_precise = np.where(big >= rule.precise_from, special.gammainc(h / 2, np.maximum(chi, 0) / 2), 0.0)
    p = 1 - (1 - p_real) * (1 - p_precise)
    return np.where((n >= 2) & (big <= rule.max_repeats), p, 0.0)


def rounds_to_answer(rule: Rule, n, mean, sd) -> np.ndarray:
    """The fewest more pairs that would answer a cell if its mean held and its spread were at its
    optimistic bound; rule.max_repeats - n + 1 when no n up to max_repeats would."""
    n, mean, sd = np.asarray(n), np.asarray(mean, dtype=float), _safe_sd(sd)
    optimistic = sd * _at(_optimistic_table(), n)
    extra = np.arange(0, rule.max_repeats + 1)
    big = n[..., None] + extra
    root = np.sqrt(big)
    s = optimistic[..., None]
    precise = (plain_t(big) * s / root <= rule.log_target) & (big >= rule.precise_from)
    ok = (np.abs(mean)[..., None] > stop_t(rule, big) * s / root) | precise
    ok &= big <= rule.max_repeats
    first = np.where(ok.any(axis=-1), ok.argmax(axis=-1), rule.max_repeats + 1)
    return np.minimum(first, np.maximum(rule.max_repeats - n + 1, 0))


def group_rates(rule: Rule, n, mean, sd, open_cells, member, cost, rounds_left) -> np.ndarray:
    """Per group: the best, over the horizons, of the chance that h more rounds answer at least
    one of its open cells, per second of those h rounds. Cells (last axis) belong to groups by
    `member` (cells x groups, 0/1); cost and rounds_left are per group; one round adds one pair
    to every cell of its group."""
    member = np.asarray(member, dtype=float)
    best = np.zeros(np.shape(open_cells)[:-1] + (member.shape[1],))
    cost = np.maximum(np.asarray(cost, dtype=float), 1e-9)
    open_cells = np.asarray(open_cells, dtype=bool)
    n, mean, sd = (np.broadcast_to(a, open_cells.shape)[open_cells] for a in (n, mean, sd))
    for h in HORIZONS:
        p = np.zeros(open_cells.shape)
        p[open_cells] = p_answered(rule, n, mean, sd, h)
        miss = np.log1p(-np.minimum(p, 1 - 1e-12)) @ member
        rate = -np.expm1(miss) / (h * cost)
        best = np.maximum(best, np.where(h <= rounds_left, rate, 0.0))
    return best


def choose(rule: Rule, n, mean, sd, member, cost, rounds_done, left, given_up) -> tuple[np.ndarray, ...]:
    """One step of the allocation: gives up the open cells out of reach (even at their optimistic
    spread they need more than max_repeats, or more rounds than the seconds `left` pay for), then
    picks the group with the best rate among those with an open cell and a round left.
    Cells on the last axis (n, mean, sd, given_up); groups on the last axis of cost and
    rounds_done. Returns (the group's index, -1 for none; given_up with the new ones; the rounds
    each cell needs)."""
    member = np.asarray(member, dtype=float)
    cost = np.asarray(cost, dtype=float)
    open_ = answers(rule, n, mean, sd) == UNANSWERED
    needed = np.maximum(rounds_to_answer(rule, n, mean, sd), 1)
    cell_cost = cost @ member.T
    left = np.asarray(left, dtype=float)
    reach = (np.asarray(n) + needed <= rule.max_repeats) & (needed * cell_cost <= left[..., None])
    given_up = np.asarray(given_up) | (open_ & ~reach)
    open_ &= ~given_up
    with np.errstate(divide="ignore", invalid="ignore"):
        affordable = np.where(cost > 0, np.floor(left[..., None] / cost), np.inf)
    rounds_left = np.minimum(rule.max_repeats - np.asarray(rounds_done), affordable)
    rates = group_rates(rule, n, mean, sd, open_, member, cost, rounds_left)
    runnable = ((open_.astype(float) @ member) > 0) & (rounds_left >= 1)
    choice = np.where(runnable.any(axis=-1), np.where(runnable, rates, -1.0).argmax(axis=-1), -1)
    return choice, given_up, needed


def log_stats(values) -> tuple[int, float, float]:
    """(n, mean, sd) of the logs of positive ratios; sd nan below two."""
    logs = np.log([v for v in values if v is not None and v > 0 and math.isfinite(v)])
    n = len(logs)
    if n == 0:
        return 0, math.nan, math.nan
    return n, float(logs.mean()), float(logs.std(ddof=1)) if n > 1 else math.nan
